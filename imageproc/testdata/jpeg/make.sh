#!/bin/sh
# Makes the JPEG fixtures with libjpeg-turbo's cjpeg and Pillow's decoding of
# each (Debian bookworm: libjpeg-turbo-progs 2.1.5, python3-pil 9.4.0):
#   sh make.sh /path/to/skin_photo_800x600.jpg
set -e
src=$1
/usr/bin/python3 -c "
from PIL import Image
im = Image.open('$src').convert('RGB')
im.crop((300, 200, 337, 229)).save('src_37x29.ppm')
im.crop((100, 100, 140, 133)).convert('L').save('src_40x33.pgm')
v = Image.new('RGB', (19, 13))
for x in range(19):
    for y in range(13):
        v.putpixel((x, y), ((37 * y) % 256, 12 * x, 255 * (y % 2)))
v.save('src_19x13.ppm')
s = Image.new('RGB', (3, 6))
for x in range(3):
    for y in range(6):
        s.putpixel((x, y), (255 * (x % 2), 40 * y, 255 * (1 - x // 2)))
s.save('src_3x6.ppm')
"
cjpeg -quality 90 -sample 2x2 -restart 2B src_37x29.ppm > ycc420_restart.jpg
cjpeg -quality 95 -sample 2x1 -optimize src_37x29.ppm > ycc422_optimized.jpg
cjpeg -quality 95 -sample 1x2 src_19x13.ppm > ycc440.jpg
cjpeg -quality 85 -sample 4x1 src_37x29.ppm > ycc411.jpg
cjpeg -quality 75 -sample 1x1 -restart 1 src_37x29.ppm > ycc444_restart_rows.jpg
cjpeg -quality 90 -grayscale -restart 3B src_40x33.pgm > gray_restart.jpg
cjpeg -quality 90 -progressive src_37x29.ppm > progressive.jpg
cjpeg -quality 70 -progressive -sample 2x1 -restart 1B src_37x29.ppm > progressive_restart.jpg
cjpeg -quality 80 -progressive -grayscale src_40x33.pgm > progressive_gray.jpg
cjpeg -quality 90 -rgb src_37x29.ppm > rgb.jpg
# Ratios image.YCbCr has no name for: libjpeg replicates the chroma.
cjpeg -quality 95 -sample 3x1 src_19x13.ppm > ycc_3x1.jpg
cjpeg -quality 95 -sample 2x4 -progressive src_19x13.ppm > ycc_2x4_progressive.jpg
# Chroma two samples wide: libjpeg replicates instead of interpolating.
cjpeg -quality 100 -sample 2x2 src_3x6.ppm > narrow420.jpg
rm -f src_37x29.ppm src_40x33.pgm src_19x13.ppm src_3x6.ppm
/usr/bin/python3 -c "from PIL import Image; Image.open('../formats/cmyk.jpg').save('cmyk_progressive.jpg', progressive=True, quality=85)"
for f in *.jpg; do
  /usr/bin/python3 -c "from PIL import Image; Image.open('$f').convert('RGB').save('$f.pil.png')"
done
