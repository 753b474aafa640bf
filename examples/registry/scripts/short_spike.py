"""Touches 120 MiB and exits at once: the peak lives for a few milliseconds."""
block = bytearray(120 * 1024 * 1024)
for i in range(0, len(block), 4096):
    block[i] = 1
