// BpfObject: one opened-and-loaded ELF object (libbpf bpf_object). Everything that must happen
// before the kernel sees the object — max_entries, `const volatile` constants, pin paths — is
// applied between open and load. Programs and maps are handed to JS as duplicated descriptors
// (Handles) so that each JS wrapper owns what it closes.
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/magic.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cstdarg>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "common.h"

namespace bae {

// libbpf reports through a global print callback. While an object is opened or loaded on the
// main thread its messages are collected for the error; otherwise only warnings reach stderr.
// thread_local: worker threads load objects too.
static thread_local std::string* libbpfCapture = nullptr;

static int LibbpfPrint(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (libbpfCapture != nullptr) {
    if (level == LIBBPF_DEBUG) return 0;
    char line[1024];
    vsnprintf(line, sizeof line, fmt, args);
    libbpfCapture->append(line);
    return 0;
  }
  if (level == LIBBPF_DEBUG || getenv("BAE_LIBBPF_QUIET")) return 0;
  return vfprintf(stderr, fmt, args);
}

struct CaptureScope {
  explicit CaptureScope(std::string* out) { libbpfCapture = out; }
  ~CaptureScope() { libbpfCapture = nullptr; }
};

// Strips typedef/const/volatile so that the integer behind a `const volatile` knob is visible.
static const struct btf_type* ResolveType(const struct btf* btf, __u32 id) {
  const struct btf_type* t = btf__type_by_id(btf, id);
  while (t && (btf_is_typedef(t) || btf_is_const(t) || btf_is_volatile(t) || btf_is_restrict(t)))
    t = btf__type_by_id(btf, t->type);
  return t;
}

static std::string Join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out.empty() ? "none" : out;
}

static Napi::Error InputError(Napi::Env env, const std::string& op, const std::string& message) {
  Napi::Error e = Napi::Error::New(env, op + ": " + message);
  e.Set("errno", Napi::Number::New(env, EINVAL));
  e.Set("op", Napi::String::New(env, op));
  e.Set("detail", Napi::String::New(env, message));
  return e;
}

class BpfObject : public Napi::ObjectWrap<BpfObject>, public Closable {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "BpfObject",
                       {InstanceMethod<&BpfObject::Programs>("programs"), InstanceMethod<&BpfObject::Maps>("maps"),
                        InstanceMethod<&BpfObject::StructLayout>("structLayout"),
                        InstanceMethod<&BpfObject::JsClose>("close")});
  }

  // new BpfObject(path, pinDir|null, reusePinned, maxEntries: [name, n][], constants: [name, bigint][])
  explicit BpfObject(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BpfObject>(info), Closable(info.Env()) {
    Napi::Env env = info.Env();
    path_ = ArgString(info, 0);
    std::string pinDir = ArgIsNullish(info, 1) ? "" : ArgString(info, 1);
    bool reusePinned = info[2].ToBoolean();
    const std::string op = "bpf_object__open(" + path_ + ")";

    std::string messages;
    std::vector<char> kernelLog(4 << 20);
    kernelLog[0] = '\0';
    {
      CaptureScope capture(&messages);
      LIBBPF_OPTS(bpf_object_open_opts, opts, .kernel_log_buf = kernelLog.data(), .kernel_log_size = kernelLog.size(),
                  .kernel_log_level = 0);
      obj_ = bpf_object__open_file(path_.c_str(), &opts);
      if (obj_ == nullptr) ThrowErrno(env, op, errno);
    }
    try {
      ApplyMaxEntries(env, info[3].As<Napi::Array>());
      ApplyConstants(env, info[4].As<Napi::Array>());
      if (!pinDir.empty()) ApplyPinDir(env, pinDir, reusePinned);
      int err;
      {
        CaptureScope capture(&messages);
        err = bpf_object__load(obj_);
      }
      if (err) {
        Napi::Error e = ErrnoError(env, "bpf_object__load(" + path_ + ")", err);
        std::string log(kernelLog.data());
        e.Set("verifierLog", Napi::String::New(env, log));
        e.Set("libbpfLog", Napi::String::New(env, messages));
        throw e;
      }
    } catch (...) {
      Close();
      throw;
    }
  }

  ~BpfObject() override { Close(); }

  void Close() override {
    if (obj_ != nullptr) {
      bpf_object__close(obj_);
      obj_ = nullptr;
    }
  }

 private:
  void ApplyMaxEntries(Napi::Env env, Napi::Array pairs) {
    for (uint32_t i = 0; i < pairs.Length(); i++) {
      Napi::Array pair = pairs.Get(i).As<Napi::Array>();
      std::string name = pair.Get(0u).As<Napi::String>().Utf8Value();
      uint32_t n = pair.Get(1u).As<Napi::Number>().Uint32Value();
      struct bpf_map* map = FindUserMap(name);
      if (map == nullptr)
        throw InputError(env, "loadCollection(" + path_ + ")",
                         "maxEntries names no map '" + name + "' (maps: " + Join(UserMapNames()) + ")");
      int err = bpf_map__set_max_entries(map, n);
      if (err) ThrowErrno(env, "bpf_map__set_max_entries(" + name + ")", err);
    }
  }

  // `const volatile` globals live in .rodata; the BTF DATASEC of .rodata gives each variable's
  // offset and size, and the map's initial value is writable until load.
  void ApplyConstants(Napi::Env env, Napi::Array pairs) {
    if (pairs.Length() == 0) return;
    const std::string op = "loadCollection(" + path_ + ")";
    struct btf* btf = bpf_object__btf(obj_);
    struct bpf_map* rodata = nullptr;
    struct bpf_map* map;
    bpf_object__for_each_map(map, obj_) {
      std::string n = bpf_map__name(map);
      if (bpf_map__is_internal(map) && n.size() >= 7 && n.compare(n.size() - 7, 7, ".rodata") == 0) rodata = map;
    }
    const struct btf_type* sec = nullptr;
    if (btf != nullptr) {
      int id = btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC);
      if (id > 0) sec = btf__type_by_id(btf, id);
    }
    std::vector<std::string> known;
    if (sec != nullptr) {
      const struct btf_var_secinfo* vi = btf_var_secinfos(sec);
      for (int k = 0; k < btf_vlen(sec); k++, vi++) known.push_back(btf__name_by_offset(btf, btf__type_by_id(btf, vi->type)->name_off));
    }
    size_t rodataSize = 0;
    auto* bytes = rodata ? static_cast<uint8_t*>(const_cast<void*>(bpf_map__initial_value(rodata, &rodataSize))) : nullptr;

    for (uint32_t i = 0; i < pairs.Length(); i++) {
      Napi::Array pair = pairs.Get(i).As<Napi::Array>();
      std::string name = pair.Get(0u).As<Napi::String>().Utf8Value();
      bool lossless = true;
      int64_t sval = pair.Get(1u).As<Napi::BigInt>().Int64Value(&lossless);
      bool fitsSigned = lossless;
      uint64_t uval = pair.Get(1u).As<Napi::BigInt>().Uint64Value(&lossless);
      bool fitsUnsigned = lossless;

      const struct btf_var_secinfo* found = nullptr;
      if (sec != nullptr) {
        const struct btf_var_secinfo* vi = btf_var_secinfos(sec);
        for (int k = 0; k < btf_vlen(sec); k++, vi++)
          if (name == btf__name_by_offset(btf, btf__type_by_id(btf, vi->type)->name_off)) found = vi;
      }
      if (found == nullptr || bytes == nullptr)
        throw InputError(env, op, "no constant named '" + name + "' in .rodata (constants: " + Join(known) + ")");
      const struct btf_type* var = btf__type_by_id(btf, found->type);
      const struct btf_type* t = ResolveType(btf, var->type);
      bool isSigned = false;
      if (t != nullptr && btf_is_int(t)) {
        isSigned = (btf_int_encoding(t) & BTF_INT_SIGNED) != 0;
      } else if (t != nullptr && btf_is_any_enum(t)) {
        isSigned = btf_kflag(t);
      } else {
        throw InputError(env, op, "constant '" + name + "' is not an integer, enum or bool");
      }
      uint32_t size = found->size;
      if (size > 8 || found->offset + size > rodataSize)
        throw InputError(env, op, "constant '" + name + "' has an unsupported size " + std::to_string(size));
      bool inRange;
      if (size == 8) {
        inRange = isSigned ? fitsSigned : fitsUnsigned;
      } else {
        int bits = size * 8;
        inRange = isSigned ? (fitsSigned && sval >= -(int64_t(1) << (bits - 1)) && sval < (int64_t(1) << (bits - 1)))
                           : (fitsUnsigned && uval < (uint64_t(1) << bits));
      }
      if (!inRange)
        throw InputError(env, op,
                         "value for constant '" + name + "' does not fit its " + std::to_string(size) + "-byte " +
                             (isSigned ? "signed" : "unsigned") + " type");
      uint64_t raw = isSigned ? static_cast<uint64_t>(sval) : uval;
      for (uint32_t b = 0; b < size; b++) bytes[found->offset + b] = static_cast<uint8_t>(raw >> (8 * b));  // BPF is LE here
    }
  }

  // Maps get pinned at <dir>/<name>. A map already pinned there is refused, or with reusePinned
  // reused: checked and handed to libbpf here rather than through libbpf's own reuse, whose
  // compatibility check (libbpf 1.1) fails on the flags the kernel adds by itself, such as
  // BPF_F_RDONLY_PROG on every devmap, so that a devmap could never be reused.
  void ApplyPinDir(Napi::Env env, const std::string& dir, bool reusePinned) {
    struct bpf_map* map;
    bpf_object__for_each_map(map, obj_) {
      if (bpf_map__is_internal(map)) continue;
      const std::string name = bpf_map__name(map);
      const std::string path = dir + "/" + name;
      struct stat st;
      if (stat(path.c_str(), &st) != 0) {
        int err = bpf_map__set_pin_path(map, path.c_str());
        if (err) ThrowErrno(env, "bpf_map__set_pin_path(" + path + ")", err);
        continue;
      }
      if (!reusePinned) {
        Napi::Error e = ErrnoError(env, "bpf_map__pin(" + name + ")", EEXIST);
        e.Set("detail", Napi::String::New(env, "a map is already pinned at " + path + " (pass reusePinned to reuse it)"));
        throw e;
      }
      ReusePinned(env, map, path);
    }
  }

  void ReusePinned(Napi::Env env, struct bpf_map* map, const std::string& path) {
    const std::string name = bpf_map__name(map);
    int fd = bpf_obj_get(path.c_str());
    if (fd < 0) ThrowErrno(env, "bpf_obj_get(" + path + ")", errno);
    struct bpf_map_info info = {};
    __u32 len = sizeof info;
    std::string mismatch;
    if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) {
      int err = errno;
      close(fd);
      ThrowErrno(env, "bpf_map_get_info_by_fd(" + path + ")", err);
    }
    const __u32 kernelAdded = BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG;
    auto differs = [&](const char* what, uint64_t pinned, uint64_t wanted) {
      if (pinned != wanted && mismatch.empty())
        mismatch = std::string(what) + " " + std::to_string(pinned) + " where the object wants " + std::to_string(wanted);
    };
    differs("type", info.type, bpf_map__type(map));
    differs("key size", info.key_size, bpf_map__key_size(map));
    differs("value size", info.value_size, bpf_map__value_size(map));
    differs("max_entries", info.max_entries, bpf_map__max_entries(map));
    differs("flags", info.map_flags & ~kernelAdded, bpf_map__map_flags(map) & ~kernelAdded);
    if (!mismatch.empty()) {
      close(fd);
      Napi::Error e = ErrnoError(env, "reusePinned(" + name + ")", EINVAL);
      e.Set("detail", Napi::String::New(env, "the map pinned at " + path + " does not fit: " + mismatch));
      throw e;
    }
    int err = bpf_map__reuse_fd(map, fd);
    close(fd);  // reuse_fd keeps its own duplicate
    if (err) ThrowErrno(env, "bpf_map__reuse_fd(" + name + ")", err);
  }

  struct bpf_map* FindUserMap(const std::string& name) {
    struct bpf_map* map;
    bpf_object__for_each_map(map, obj_) if (!bpf_map__is_internal(map) && name == bpf_map__name(map)) return map;
    return nullptr;
  }

  std::vector<std::string> UserMapNames() {
    std::vector<std::string> names;
    struct bpf_map* map;
    bpf_object__for_each_map(map, obj_) if (!bpf_map__is_internal(map)) names.push_back(bpf_map__name(map));
    return names;
  }

  void CheckOpen(Napi::Env env) {
    if (obj_ == nullptr) ThrowErrno(env, "collection(" + path_ + ") is closed", EBADF);
  }

  static Napi::Object DupHandle(Napi::Env env, int fd, const std::string& what) {
    int dupFd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (dupFd < 0) ThrowErrno(env, "dup(" + what + ")", errno);
    return Handle::New(env, dupFd);
  }

  // [{ name, section, handle }]
  Napi::Value Programs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env);
    Napi::Array out = Napi::Array::New(env);
    struct bpf_program* prog;
    uint32_t i = 0;
    bpf_object__for_each_program(prog, obj_) {
      if (bpf_program__fd(prog) < 0) continue;  // not autoloaded
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", bpf_program__name(prog));
      o.Set("section", bpf_program__section_name(prog));
      o.Set("handle", DupHandle(env, bpf_program__fd(prog), bpf_program__name(prog)));
      out.Set(i++, o);
    }
    return out;
  }

  // [{ name, internal, handle }]
  Napi::Value Maps(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env);
    Napi::Array out = Napi::Array::New(env);
    struct bpf_map* map;
    uint32_t i = 0;
    bpf_object__for_each_map(map, obj_) {
      if (bpf_map__fd(map) < 0) continue;
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", bpf_map__name(map));
      o.Set("internal", Napi::Boolean::New(env, bpf_map__is_internal(map)));
      o.Set("handle", DupHandle(env, bpf_map__fd(map), bpf_map__name(map)));
      out.Set(i++, o);
    }
    return out;
  }

  // structLayout(name) -> { name, size, members: [{ name, offset, size, bitOffset, bitSize }] } | undefined
  Napi::Value StructLayout(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env);
    std::string name = ArgString(info, 0);
    struct btf* btf = bpf_object__btf(obj_);
    if (btf == nullptr) ThrowErrno(env, "bpf_object__btf(" + path_ + ")", ENODATA);
    int id = btf__find_by_name_kind(btf, name.c_str(), BTF_KIND_STRUCT);
    if (id < 0) id = btf__find_by_name_kind(btf, name.c_str(), BTF_KIND_UNION);
    if (id < 0) return env.Undefined();
    const struct btf_type* t = btf__type_by_id(btf, id);
    Napi::Object out = Napi::Object::New(env);
    out.Set("name", name);
    out.Set("size", Napi::Number::New(env, t->size));
    Napi::Array members = Napi::Array::New(env);
    const struct btf_member* m = btf_members(t);
    for (int k = 0; k < btf_vlen(t); k++, m++) {
      Napi::Object mo = Napi::Object::New(env);
      uint32_t bitOffset = btf_member_bit_offset(t, k);
      uint32_t bitSize = btf_member_bitfield_size(t, k);
      __s64 size = btf__resolve_size(btf, m->type);
      mo.Set("name", btf__name_by_offset(btf, m->name_off));
      mo.Set("offset", Napi::Number::New(env, bitOffset / 8));
      mo.Set("size", Napi::Number::New(env, size < 0 ? 0 : static_cast<double>(size)));
      if (bitSize != 0) {
        mo.Set("bitOffset", Napi::Number::New(env, bitOffset));
        mo.Set("bitSize", Napi::Number::New(env, bitSize));
      }
      members.Set(static_cast<uint32_t>(k), mo);
    }
    out.Set("members", members);
    return out;
  }

  Napi::Value JsClose(const Napi::CallbackInfo& info) {
    Close();
    return info.Env().Undefined();
  }

  std::string path_;
  struct bpf_object* obj_ = nullptr;
};

static Napi::Value NumPossibleCpus(const Napi::CallbackInfo& info) {
  int n = libbpf_num_possible_cpus();
  if (n < 0) ThrowErrno(info.Env(), "libbpf_num_possible_cpus", n);
  return Napi::Number::New(info.Env(), n);
}

// ensureBpffs(dir): mounts bpffs at /sys/fs/bpf when dir lies below it and nothing is mounted
// there yet (as bpftool does). Returns true when it mounted.
static Napi::Value EnsureBpffs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string dir = ArgString(info, 0);
  const std::string root = "/sys/fs/bpf";
  if (dir.compare(0, root.size(), root) != 0) return Napi::Boolean::New(env, false);
  struct statfs st;
  if (statfs(root.c_str(), &st) == 0 && st.f_type == BPF_FS_MAGIC) return Napi::Boolean::New(env, false);
  if (mount("bpf", root.c_str(), "bpf", 0, "mode=0700") != 0) ThrowErrno(env, "mount(bpf, " + root + ")", errno);
  return Napi::Boolean::New(env, true);
}

static Napi::Value IsBpffs(const Napi::CallbackInfo& info) {
  struct statfs st;
  std::string path = ArgString(info, 0);
  return Napi::Boolean::New(info.Env(), statfs(path.c_str(), &st) == 0 && st.f_type == BPF_FS_MAGIC);
}

void InitObject(Napi::Env env, Napi::Object exports) {
  libbpf_set_print(LibbpfPrint);
  exports.Set("BpfObject", BpfObject::Define(env));
  exports.Set("numPossibleCpus", Napi::Function::New(env, NumPossibleCpus));
  exports.Set("ensureBpffs", Napi::Function::New(env, EnsureBpffs));
  exports.Set("isBpffs", Napi::Function::New(env, IsBpffs));
}

}  // namespace bae
