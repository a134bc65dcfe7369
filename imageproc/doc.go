// Package imageproc turns image files into the pixel values MedGemma reads,
// exactly as transformers' Gemma3ImageProcessor prepares them, and does better
// than it where medical images need it.
//
// The path of one image:
//
//	file bytes -> Decode (PNG, JPEG, GIF, BMP, TIFF, WebP, DICOM)
//	           -> EXIF orientation, as transformers' load_image applies it
//	           -> RGB as PIL's convert("RGB") (or a medical window)
//	           -> Prepare: optional pad to square, optional pan and scan,
//	              resize to 896x896 with PIL's antialiased bilinear filter
//	           -> PixelValues: rescale and normalize into float32 [N,3,S,S]
//
// Resize reproduces the reference pixel for pixel: transformers 5 resizes with
// torchvision's port of Pillow-SIMD, whose weights are int16 at the largest
// precision that fits rather than Pillow's 22-bit int32, and Resize implements
// both (RoundingTransformers, the default, and RoundingPIL). JPEG goes
// through this package's own decoder, which computes what libjpeg computes
// (islow IDCT, fancy upsampling, its colour tables), so a JPEG's pixels are
// the ones PIL hands transformers; Go's image/jpeg rounds differently.
//
// Where transformers mishandles an input, this package does what the image
// means instead: RGBA and palette images are converted as PIL's
// convert("RGB") does (transformers fails on RGBA and garbles palettes),
// 16-bit grayscale is scaled by round(v/257) (transformers saturates it), and
// DICOM files (uncompressed, JPEG baseline, 12-bit extended and lossless,
// RLE) are decoded with modality-aware windowing as Google prepares them for
// MedGemma (CT: three Hounsfield windows packed as RGB).
//
// Every decoder checks the image size from the header first: an image over the
// pixel limit is refused before any pixel is decoded. Errors name the file and
// what is wrong; malformed input never panics.
package imageproc
