#!/usr/bin/env bash
# Runs drivers/tests/usb_gadget/main.rs inside a QEMU guest whose kernel has a real USB
# stack: dummy_hcd + the configfs printer gadget give a bidirectional USB printer
# (0a5f:0081, /dev/usb/lp0 through usblp, /dev/bus/usb/001/NNN through libusb), and the
# gadget side (/dev/g_printer0) lets the test read what the host sent, answer, set the
# port status and unplug/replug it. Setup as in printer-langs.md §6.5.
#
# Usage: bash drivers/tests/usb_gadget/run.sh      (from the repository root, as root)
# Needs: apt (qemu-system-x86, busybox-static, cpio and a Debian linux-image package).
# Exit code: the guest test's (0 = passed); 2 = setup failed.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
WORK=${LABELD_USB_GADGET_DIR:-$ROOT/target/usb-gadget}
TIMEOUT=${LABELD_USB_GADGET_TIMEOUT:-240}
mkdir -p "$WORK"
cd "$WORK"

need() { command -v "$1" >/dev/null 2>&1; }
if ! need qemu-system-x86_64 || ! need cpio || ! [ -x /bin/busybox ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        qemu-system-x86 busybox-static cpio >/dev/null
fi

# The kernel: whatever linux-image-amd64 points at (modules are plain .ko in Debian 12).
if ! [ -d kernel/boot ]; then
    PKG=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/{print $2; exit}')
    [ -n "$PKG" ] || { apt-get update -qq; PKG=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/{print $2; exit}'); }
    rm -rf kernel dl && mkdir -p dl && (cd dl && apt-get download "$PKG" >/dev/null 2>&1)
    dpkg-deb -x dl/*.deb kernel
    rm -rf dl
fi
VMLINUZ=$(ls kernel/boot/vmlinuz-* | head -n1)
KVER=${VMLINUZ##*/vmlinuz-}
MODDIR=kernel/lib/modules/$KVER/kernel

# The guest test binary (a normal integration test target; it skips on a host).
BIN=$(cd "$ROOT" && cargo test -q -p labeld-drivers --test usb_gadget --no-run --message-format=json \
    | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n1)
[ -x "$BIN" ] || { echo "usb_gadget: could not build the guest test binary" >&2; exit 2; }

# The initramfs: busybox, the modules, the test binary and the libraries it links.
rm -rf initramfs && mkdir -p initramfs/{bin,sbin,proc,sys,dev,tmp,modules,lib64,usr/lib}
cp /bin/busybox initramfs/bin/busybox
for m in fs/configfs/configfs drivers/usb/common/usb-common drivers/usb/core/usbcore \
         drivers/usb/gadget/udc/udc-core drivers/usb/gadget/libcomposite \
         drivers/usb/gadget/function/usb_f_printer drivers/usb/gadget/udc/dummy_hcd \
         drivers/usb/class/usblp; do
    cp "$MODDIR/$m.ko" initramfs/modules/
done
cp "$BIN" initramfs/bin/usb_gadget_test
for lib in $(ldd "$BIN" | awk '/=>/ {print $3} /ld-linux/ {print $1}'); do
    mkdir -p "initramfs$(dirname "$lib")"
    cp -L "$lib" "initramfs$lib"
done

cat > initramfs/init <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /tmp && mount -t tmpfs tmpfs /tmp
for m in configfs usb-common usbcore udc-core libcomposite usb_f_printer dummy_hcd usblp; do
    insmod /modules/$m.ko || echo "usb_gadget: insmod $m failed"
done
mount -t configfs none /sys/kernel/config
G=/sys/kernel/config/usb_gadget/g1
mkdir -p $G
echo 0x0a5f > $G/idVendor
echo 0x0081 > $G/idProduct
mkdir -p $G/strings/0x409
echo "LABELD0001" > $G/strings/0x409/serialnumber
echo "Zebra Technologies" > $G/strings/0x409/manufacturer
echo "ZTC GK420t (labeld test gadget)" > $G/strings/0x409/product
mkdir -p $G/functions/printer.usb0
# f_printer (6.1) sends strlen(pnp_string) bytes *including* its 2-byte length
# prefix, and that length leaves the prefix out: the last two characters never
# leave the gadget. Two padding characters make the reply a correct 1284 one.
printf '%s  ' "MFG:Zebra Technologies;CMD:ZPL;MDL:ZTC GK420t;CLS:PRINTER;SN:LABELD0001;" \
    > $G/functions/printer.usb0/pnp_string
echo 10 > $G/functions/printer.usb0/q_len
mkdir -p $G/configs/c.1
ln -s $G/functions/printer.usb0 $G/configs/c.1/
ls /sys/class/udc > /tmp/udc
echo "$(cat /tmp/udc)" > $G/UDC
i=0; while [ ! -e /dev/usb/lp0 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
echo "usb_gadget: $(ls /dev/usb /dev/g_printer* 2>&1 | tr '\n' ' ')"
LABELD_USB_GADGET=$G LABELD_USB_GADGET_UDC=$(cat /tmp/udc) RUST_BACKTRACE=1 \
    /bin/usb_gadget_test --test-threads=1 --nocapture
echo "usb_gadget: exit $?"
poweroff -f
INIT
chmod +x initramfs/init
(cd initramfs && find . | cpio -o -H newc --quiet | gzip -1) > initramfs.cpio.gz

# TCG: -enable-kvm hung on this kind of host (printer-langs.md §6.4).
LOG=$WORK/console.log
timeout "$TIMEOUT" qemu-system-x86_64 -m 768 -smp 1 -nographic -no-reboot \
    -kernel "$VMLINUZ" -initrd initramfs.cpio.gz \
    -append "console=ttyS0 quiet panic=-1" </dev/null | tee "$LOG" || true
STATUS=$(sed -n 's/.*usb_gadget: exit \([0-9]*\).*/\1/p' "$LOG" | tail -n1)
[ -n "$STATUS" ] || { echo "usb_gadget: the guest did not finish (see $LOG)" >&2; exit 2; }
exit "$STATUS"
