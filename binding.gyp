{
  "targets": [
    {
      "target_name": "berth_native",
      "sources": ["src/native/berth.c"],
      "cflags": ["-O2", "-Wall", "-Wno-deprecated-declarations"]
    }
  ]
}
