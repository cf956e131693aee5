"""Renders a command's real terminal output to a PNG (a terminal 'screenshot').

usage: python3 screenshots/render_terminal.py OUT.png -- COMMAND [ARGS...]
"""
import subprocess
import sys

from PIL import Image, ImageDraw, ImageFont

out, cmd = sys.argv[1], sys.argv[sys.argv.index("--") + 1:]
text = "$ " + " ".join(a if " " not in a else repr(a) for a in cmd) + "\n"
text += subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf", 15)
lines = text.rstrip("\n").split("\n")
w = max(font.getlength(l) for l in lines) + 40
h = len(lines) * 19 + 40
img = Image.new("RGB", (int(w), int(h)), (30, 32, 38))
d = ImageDraw.Draw(img)
for i, l in enumerate(lines):
    colour = (130, 200, 255) if i == 0 else (225, 228, 232)
    d.text((20, 20 + i * 19), l, font=font, fill=colour)
img.save(out)
print("wrote", out)
