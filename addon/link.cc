// XDP attachment: bpf_link based attach, query of what an interface carries, and the detach
// paths for both kinds of attachment (link and legacy netlink).
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <unistd.h>

#include <string>

#include "common.h"

namespace bae {

// xdpLinkCreate(progFd, ifindex, xdpFlags) -> Handle
static Napi::Value XdpLinkCreate(const Napi::CallbackInfo& info) {
  LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = ArgUint(info, 2));
  int fd = bpf_link_create(ArgInt(info, 0), ArgInt(info, 1), BPF_XDP, &opts);
  if (fd < 0) ThrowErrno(info.Env(), "bpf_link_create", LibbpfErr(fd));
  return Handle::New(info.Env(), fd);
}

// linkDetach(fd)
static Napi::Value LinkDetach(const Napi::CallbackInfo& info) {
  int ret = bpf_link_detach(ArgInt(info, 0));
  if (ret) ThrowErrno(info.Env(), "bpf_link_detach", LibbpfErr(ret));
  return info.Env().Undefined();
}

static bool LinkInfoOf(int fd, struct bpf_link_info* li) {
  *li = {};
  __u32 len = sizeof *li;
  return bpf_obj_get_info_by_fd(fd, li, &len) == 0;
}

static Napi::Object LinkInfoObject(Napi::Env env, const struct bpf_link_info& li) {
  Napi::Object o = Napi::Object::New(env);
  const char* typeName = libbpf_bpf_link_type_str(static_cast<enum bpf_link_type>(li.type));
  o.Set("id", Napi::Number::New(env, li.id));
  o.Set("progId", Napi::Number::New(env, li.prog_id));
  o.Set("type", typeName ? Napi::String::New(env, typeName) : Napi::String::New(env, "type_" + std::to_string(li.type)));
  o.Set("ifindex", Napi::Number::New(env, li.type == BPF_LINK_TYPE_XDP ? li.xdp.ifindex : 0));
  return o;
}

// linkInfo(fd) -> { id, progId, type, ifindex }
static Napi::Value LinkInfo(const Napi::CallbackInfo& info) {
  struct bpf_link_info li;
  if (!LinkInfoOf(ArgInt(info, 0), &li)) ThrowErrno(info.Env(), "bpf_link_get_info_by_fd", errno);
  return LinkInfoObject(info.Env(), li);
}

// linkGetById(id) -> Handle
static Napi::Value LinkGetById(const Napi::CallbackInfo& info) {
  int fd = bpf_link_get_fd_by_id(ArgUint(info, 0));
  if (fd < 0) ThrowErrno(info.Env(), "bpf_link_get_fd_by_id", errno);
  return Handle::New(info.Env(), fd);
}

// xdpLinkIds(ifindex, progId) -> ids of XDP bpf_links holding progId on an interface with that
// index. Link info carries no network namespace, so an interface with the same index in another
// namespace can match too; matching the program as well makes that all but impossible, and the
// caller treats more than one match as ambiguous. Walks every link in the system: there are few.
static Napi::Value XdpLinkIds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t ifindex = ArgUint(info, 0), progId = ArgUint(info, 1);
  Napi::Array out = Napi::Array::New(env);
  uint32_t n = 0;
  __u32 id = 0;
  while (bpf_link_get_next_id(id, &id) == 0) {
    int fd = bpf_link_get_fd_by_id(id);
    if (fd < 0) continue;  // went away meanwhile
    struct bpf_link_info li;
    bool ok = LinkInfoOf(fd, &li);
    close(fd);
    if (ok && li.type == BPF_LINK_TYPE_XDP && li.xdp.ifindex == ifindex && li.prog_id == progId)
      out.Set(n++, Napi::Number::New(env, id));
  }
  return out;
}

// xdpQuery(ifindex) -> { progId, attachMode, drvProgId, skbProgId, hwProgId }
static Napi::Value XdpQuery(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LIBBPF_OPTS(bpf_xdp_query_opts, opts);
  int ret = bpf_xdp_query(ArgInt(info, 0), 0, &opts);
  if (ret) ThrowErrno(env, "bpf_xdp_query", LibbpfErr(ret));
  Napi::Object o = Napi::Object::New(env);
  o.Set("progId", Napi::Number::New(env, opts.prog_id));
  o.Set("attachMode", Napi::Number::New(env, opts.attach_mode));
  o.Set("drvProgId", Napi::Number::New(env, opts.drv_prog_id));
  o.Set("skbProgId", Napi::Number::New(env, opts.skb_prog_id));
  o.Set("hwProgId", Napi::Number::New(env, opts.hw_prog_id));
  return o;
}

// xdpDetach(ifindex, xdpFlags): removes a netlink-attached program in the given mode.
static Napi::Value XdpDetach(const Napi::CallbackInfo& info) {
  int ret = bpf_xdp_detach(ArgInt(info, 0), ArgUint(info, 1), nullptr);
  if (ret) ThrowErrno(info.Env(), "bpf_xdp_detach", LibbpfErr(ret));
  return info.Env().Undefined();
}

// xdpAttachLegacy(ifindex, progFd, xdpFlags): netlink attach, for tests and tools that must
// reproduce an interface that already carries a program attached the old way.
static Napi::Value XdpAttachLegacy(const Napi::CallbackInfo& info) {
  int ret = bpf_xdp_attach(ArgInt(info, 0), ArgInt(info, 1), ArgUint(info, 2), nullptr);
  if (ret) ThrowErrno(info.Env(), "bpf_xdp_attach", LibbpfErr(ret));
  return info.Env().Undefined();
}

// ifNameToIndex(name) -> ifindex or 0 when there is no such interface in this namespace
static Napi::Value IfNameToIndex(const Napi::CallbackInfo& info) {
  std::string name = ArgString(info, 0);
  return Napi::Number::New(info.Env(), if_nametoindex(name.c_str()));
}

// ifIndexToName(ifindex) -> name | undefined
static Napi::Value IfIndexToName(const Napi::CallbackInfo& info) {
  char name[IF_NAMESIZE];
  if (if_indextoname(ArgUint(info, 0), name) == nullptr) return info.Env().Undefined();
  return Napi::String::New(info.Env(), name);
}

void InitLink(Napi::Env env, Napi::Object exports) {
  exports.Set("xdpLinkCreate", Napi::Function::New(env, XdpLinkCreate));
  exports.Set("linkDetach", Napi::Function::New(env, LinkDetach));
  exports.Set("linkInfo", Napi::Function::New(env, LinkInfo));
  exports.Set("linkGetById", Napi::Function::New(env, LinkGetById));
  exports.Set("xdpLinkIds", Napi::Function::New(env, XdpLinkIds));
  exports.Set("xdpQuery", Napi::Function::New(env, XdpQuery));
  exports.Set("xdpDetach", Napi::Function::New(env, XdpDetach));
  exports.Set("xdpAttachLegacy", Napi::Function::New(env, XdpAttachLegacy));
  exports.Set("ifNameToIndex", Napi::Function::New(env, IfNameToIndex));
  exports.Set("ifIndexToName", Napi::Function::New(env, IfIndexToName));
}

}  // namespace bae
