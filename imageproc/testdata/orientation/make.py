# Makes the EXIF orientation fixtures with Pillow (Debian bookworm python3-pil
# 9.4.0): a 5x3 image stored with orientations 1..8 as PNG, and 6 as JPEG and
# WebP (lossless), each with what transformers' load_image makes of
# it: ImageOps.exif_transpose, then convert("RGB"). Run: python3 make.py
from PIL import Image, ImageOps

base = Image.new("RGB", (5, 3))
for x in range(5):
    for y in range(3):
        base.putpixel((x, y), (50 * x, 100 * y, 7 * (x + 5 * y)))

def save(name, fmt, o, **kw):
    exif = Image.Exif()
    exif[0x0112] = o
    base.save(name, fmt, exif=exif.tobytes(), **kw)
    ImageOps.exif_transpose(Image.open(name)).convert("RGB").save(name + ".pil.png")

for o in range(1, 9):
    save("o%d.png" % o, "PNG", o)
save("o6.jpg", "JPEG", 6, quality=100, subsampling=0)
save("o6.webp", "WEBP", 6, lossless=True)
