{
  "targets": [
    {
      "target_name": "imakit_ioctl",
      "sources": ["imakit_ioctl.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    },
    {
      "target_name": "imakit_hash",
      "sources": ["imakit_hash.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
