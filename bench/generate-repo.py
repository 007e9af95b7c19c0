#!/usr/bin/env python3
"""Generates a deterministic Git repository shaped like a PHP web app: about 5,000 files and
60 MB of PHP/JS/CSS text in nested directories plus some binary images.

usage: generate-repo.py DIR [--files N] [--megabytes M]
"""
import argparse
import os
import random
import subprocess

WORDS = ("function return array public private static class namespace use new echo "
         "this self null true false foreach if else while variable request response "
         "render template session cache config database query user node entity field").split()


def text_file(rng, kind, size):
    lines = []
    total = 0
    while total < size:
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12)))
        if kind == "php":
            line = f"    ${rng.choice(WORDS)}_{rng.randint(0, 999)} = '{words}';"
        elif kind == "js":
            line = f"  const {rng.choice(WORDS)}{rng.randint(0, 999)} = () => '{words}';"
        else:
            line = f".{rng.choice(WORDS)}-{rng.randint(0, 999)} {{ margin: {rng.randint(0, 40)}px; /* {words} */ }}"
        lines.append(line)
        total += len(line) + 1
    header = {"php": "<?php\n", "js": "'use strict';\n", "css": "/* styles */\n"}[kind]
    return (header + "\n".join(lines) + "\n").encode()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("dir")
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--megabytes", type=int, default=60)
    args = parser.parse_args()
    rng = random.Random(42)
    os.makedirs(args.dir, exist_ok=True)
    images = args.files // 10
    texts = args.files - images
    # About 40% of the bytes are images (incompressible), 60% text.
    image_size = int(args.megabytes * 1_000_000 * 0.4 / images)
    text_size = int(args.megabytes * 1_000_000 * 0.6 / texts)
    top = ["core", "modules", "themes", "vendor", "sites", "libraries"]
    for i in range(args.files):
        depth = rng.randint(1, 5)
        parts = [rng.choice(top)] + [f"{rng.choice(WORDS)}{rng.randint(0, 20)}" for _ in range(depth)]
        directory = os.path.join(args.dir, *parts)
        os.makedirs(directory, exist_ok=True)
        if i < images:
            path = os.path.join(directory, f"image{i}.png")
            data = rng.randbytes(rng.randint(image_size // 2, image_size * 3 // 2))
        else:
            kind = rng.choice(["php", "php", "js", "css"])
            path = os.path.join(directory, f"file{i}.{kind}")
            data = text_file(rng, kind, rng.randint(text_size // 2, text_size * 3 // 2))
        with open(path, "wb") as f:
            f.write(data)
        if i % 97 == 0 and not path.endswith(".png"):
            os.chmod(path, 0o755)
    with open(os.path.join(args.dir, "ship.yml"), "w") as f:
        f.write("app: bench\ndeploy_to: /srv/bench\nenvironments:\n  prod:\n    hosts: [web1]\n")
    env = dict(os.environ, GIT_AUTHOR_DATE="1700000000 +0000", GIT_COMMITTER_DATE="1700000000 +0000",
               GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="bench@example.com",
               GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="bench@example.com")
    subprocess.run(["git", "init", "-q", "-b", "main", args.dir], check=True)
    subprocess.run(["git", "-C", args.dir, "-c", "gc.auto=0", "add", "-A"], check=True, env=env)
    subprocess.run(["git", "-C", args.dir, "-c", "gc.auto=0", "commit", "-q", "-m", "bench"], check=True, env=env)
    # Packed, as a real repository mostly is after a clone or gc.
    subprocess.run(["git", "-C", args.dir, "gc", "-q"], check=True)


if __name__ == "__main__":
    main()
