// Package dicom reads the pixels of DICOM files: one frame, with the
// attributes that say what its values mean (modality, photometric
// interpretation, bits, rescale, the file's window). It decodes
// uncompressed frames and the compressions of CT and X-ray DICOM (JPEG
// baseline, JPEG Extended 12-bit, JPEG Lossless, RLE) through
// imageproc/jpeg and rle.go; other transfer syntaxes (JPEG 2000, JPEG-LS)
// are refused by name. Rendering the values to RGB (Hounsfield windows,
// MONOCHROME1) is imageproc's.
//
// github.com/suyashkumar/dicom parses the data set. It allocates a value's
// declared length before reading it, so lengths.go walks the data elements
// first and refuses a length beyond the end of the file; the frame size is
// checked against the pixel limit from the header, before any pixel is
// decoded.
package dicom
