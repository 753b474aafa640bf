"""Reads a root-only file as an unprivileged user: PermissionError."""
import os

if os.geteuid() == 0:
    os.setuid(65534)  # act as "nobody", as a sandboxed script would
with open("/etc/shadow", encoding="utf-8") as f:
    print(len(f.read()))
