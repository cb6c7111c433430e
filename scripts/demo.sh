#!/usr/bin/env bash
# The README demo: scan, verify and decrypt the bundled fixture volume (XTS-AES-128, NTFS inside,
# a recovery password and a password as protectors), then list the files of the NTFS inside.
# Everything it writes goes to ./demo/ (ignored by git); the fixture itself is only read.
set -euo pipefail
cd "$(dirname "$0")/.."
RP=236808-089419-192665-495704-618387-163174-239063-300344
mkdir -p demo
rm -f demo/plain.img
gunzip -c fixtures/xts128_recovery_password.bin.gz > demo/volume.bin

echo "== bitlocker-tools scan demo/volume.bin"
bitlocker-tools scan demo/volume.bin
echo
echo "== bitlocker-tools verify demo/volume.bin --recovery-password $RP"
bitlocker-tools verify demo/volume.bin --recovery-password "$RP"
echo
echo "== bitlocker-tools decrypt demo/volume.bin --recovery-password ... -o demo/plain.img"
bitlocker-tools decrypt demo/volume.bin --recovery-password "$RP" -o demo/plain.img
echo
echo "== bitlocker-tools ls demo/volume.bin --recovery-password ... (the NTFS inside, no image needed)"
bitlocker-tools ls demo/volume.bin --recovery-password "$RP"
