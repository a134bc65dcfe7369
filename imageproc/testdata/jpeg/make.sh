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
"
cjpeg -quality 90 -sample 2x2 -restart 2B src_37x29.ppm > ycc420_restart.jpg
cjpeg -quality 95 -sample 2x1 -optimize src_37x29.ppm > ycc422_optimized.jpg
cjpeg -quality 85 -sample 1x2 src_37x29.ppm > ycc440.jpg
cjpeg -quality 85 -sample 4x1 src_37x29.ppm > ycc411.jpg
cjpeg -quality 75 -sample 1x1 -restart 1 src_37x29.ppm > ycc444_restart_rows.jpg
cjpeg -quality 90 -grayscale -restart 3B src_40x33.pgm > gray_restart.jpg
cjpeg -quality 90 -progressive src_37x29.ppm > progressive.jpg
rm -f src_37x29.ppm src_40x33.pgm
for f in *.jpg; do
  /usr/bin/python3 -c "from PIL import Image; Image.open('$f').convert('RGB').save('$f.pil.png')"
done
