// Package jpeg decodes JPEG as libjpeg(-turbo) does, so that the pixels are
// the ones PIL hands transformers: Go's image/jpeg uses another inverse DCT
// and repeats chroma samples where libjpeg interpolates them, which moves
// pixels by a level or two and changes what the model sees.
//
// Decode handles baseline and progressive Huffman files with 8-bit samples
// (gray, YCbCr with any whole chroma ratio, RGB, Adobe CMYK) with libjpeg's
// islow integer IDCT (AVX2 where the CPU has it, equal bit for bit to the
// plain Go code), restart intervals, and the colour space as libjpeg
// chooses it; ToRGB then upsamples and converts YCbCr with libjpeg's
// filters and tables. What is left (arithmetic coding, YCCK, subsampled
// CMYK or RGB, a baseline scan per component) goes to image/jpeg. DICOM's
// compressions get their own entry points: Decode12 (JPEG Extended, 12-bit
// gray) and DecodeLossless (process 14, predictors 1-7, 2 to 16 bits).
//
// Every entry point checks the image's size from its frame header before
// decoding, and reads the stream's structure through one marker walk
// (markers.go), which Config and Exif share. Malformed input gives an
// error, never a panic (fuzzed).
package jpeg
