// The softswitch appliance image: the base disk (packer/base.sh) booted
// under qemu with TCG (never KVM here), the softswitch package installed,
// then cleaned so that no node-specific secret stays in the image.
//
//   CHECKPOINT_DISABLE=1 packer build -var base=... -var deb=... \
//     -var ssh_key=... -var output=... packer/softswitch.pkr.hcl
// (packer/image.sh runs the whole chain.)

variable "base" {
  type        = string
  description = "the base qcow2 made by packer/base.sh (with the build key)"
}

variable "deb" {
  type        = string
  description = "the softswitch .deb (appliance/deb/build.sh)"
}

variable "ssh_key" {
  type        = string
  description = "private half of the build-only key base.sh put in the base disk"
}

variable "output" {
  type        = string
  description = "directory for the image (must not exist)"
}

source "qemu" "appliance" {
  disk_image           = true
  iso_url              = var.base
  iso_checksum         = "none"
  format               = "qcow2"
  disk_size            = "2048M"
  disk_interface       = "virtio"
  net_device           = "virtio-net"
  accelerator          = "tcg"
  headless             = true
  vnc_bind_address     = "127.0.0.1"
  memory               = 1024
  cpus                 = 2
  communicator         = "ssh"
  ssh_username         = "root"
  ssh_private_key_file = var.ssh_key
  ssh_timeout          = "6m"
  shutdown_command     = "systemctl poweroff"
  output_directory     = var.output
  vm_name              = "softswitch.qcow2"
}

build {
  sources = ["source.qemu.appliance"]

  provisioner "file" {
    source      = var.deb
    destination = "/tmp/softswitch.deb"
  }

  provisioner "shell" {
    inline = [
      "set -e",
      "dpkg -i /tmp/softswitch.deb",
      "rm -f /tmp/softswitch.deb",
      "systemctl is-enabled softswitch.service",
      # No node-specific identity in the image: SSH host keys are made at
      # first boot (ssh-host-keys.service), the machine id too, and the
      # build-only key goes.
      "rm -f /etc/ssh/ssh_host_*",
      "truncate -s 0 /etc/machine-id",
      "rm -f /root/.ssh/authorized_keys",
    ]
  }
}
