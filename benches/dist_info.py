"""Pip's install metadata for the benches' generated packages.

write_dist_info(site, name, files) writes NAME-1.0.dist-info beside the
package folder with METADATA, INSTALLER and a RECORD listing every file as
pip writes it (path relative to site-packages, sha256 in urlsafe base64
without padding, size; RECORD itself with neither), so stowage's inventory
and package split see what a real site-packages gives them.
"""
import base64, hashlib, os


def _record_line(site, rel):
    with open(os.path.join(site, rel), "rb") as f:
        data = f.read()
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{rel},sha256={digest},{len(data)}\n"


def write_dist_info(site, name, files):
    """files: paths relative to site, already written."""
    info = f"{name}-1.0.dist-info"
    os.makedirs(os.path.join(site, info), exist_ok=True)
    with open(os.path.join(site, info, "METADATA"), "w") as f:
        f.write(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    with open(os.path.join(site, info, "INSTALLER"), "w") as f:
        f.write("pip\n")
    own = [f"{info}/METADATA", f"{info}/INSTALLER"]
    with open(os.path.join(site, info, "RECORD"), "w") as f:
        for rel in list(files) + own:
            f.write(_record_line(site, rel))
        f.write(f"{info}/RECORD,,\n")
