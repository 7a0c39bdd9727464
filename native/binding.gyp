{
  "targets": [
    {
      "target_name": "smoothd_init",
      "sources": ["smoothd_init.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
