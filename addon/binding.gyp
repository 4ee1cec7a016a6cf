{
  "targets": [
    {
      "target_name": "bae",
      "sources": [
        "addon.cc",
        "common.cc",
        "object.cc",
        "map.cc",
        "program.cc",
        "link.cc",
        "ringbuf.cc",
        "features.cc",
        "delay_line/netem.cc",
        "delay_line/xsk.cc",
        "delay_line/live_tx.cc",
        "delay_line/thread.cc",
        "delay_line/js.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        ".."
      ],
      "defines": ["NAPI_VERSION=9", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-Wall", "-Wextra", "-Wno-missing-field-initializers", "-Wno-unused-parameter"],
      "libraries": ["-lbpf", "-lxdp", "-lelf", "-lz"]
    }
  ]
}
