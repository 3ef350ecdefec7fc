{
  "targets": [
    {
      "target_name": "imakit_ioctl",
      "sources": ["native/imakit_ioctl.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
