// RingBuffer: a BPF ring buffer consumed on the main thread. libuv watches the ring's epoll
// descriptor; when it is readable every available record is consumed and handed to JS in one
// call (an array of Buffers), so that a burst costs one JS entry, not one per record.
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <unistd.h>
#include <uv.h>

#include <vector>

#include "common.h"

namespace bae {

class RingBuffer : public Napi::ObjectWrap<RingBuffer>, public Closable {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "RingBuffer",
                       {InstanceMethod<&RingBuffer::JsConsume>("consume"), InstanceMethod<&RingBuffer::JsClose>("close"),
                        InstanceMethod<&RingBuffer::JsRef>("ref"), InstanceMethod<&RingBuffer::JsUnref>("unref")});
  }

  // new RingBuffer(mapFd, onRecords: (records: Buffer[]) => void)
  explicit RingBuffer(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<RingBuffer>(info), Closable(info.Env()), env_(info.Env()) {
    Napi::Env env = info.Env();
    int mapFd = ArgInt(info, 0);
    if (!info[1].IsFunction()) throw Napi::TypeError::New(env, "RingBuffer: callback must be a function");
    callback_ = Napi::Persistent(info[1].As<Napi::Function>());
    fd_ = fcntl(mapFd, F_DUPFD_CLOEXEC, 3);
    if (fd_ < 0) ThrowErrno(env, "dup(ring buffer map)", errno);
    rb_ = ring_buffer__new(fd_, &RingBuffer::OnSample, this, nullptr);
    if (rb_ == nullptr) {
      int err = errno;
      Close();
      ThrowErrno(env, "ring_buffer__new", err);
    }
    uv_loop_t* loop = nullptr;
    napi_get_uv_event_loop(env, &loop);
    poll_ = new uv_poll_t;
    poll_->data = this;
    int ret = uv_poll_init(loop, poll_, ring_buffer__epoll_fd(rb_));
    if (ret == 0) ret = uv_poll_start(poll_, UV_READABLE, &RingBuffer::OnReadable);
    if (ret != 0) {
      Close();
      ThrowErrno(env, "uv_poll_start(ring buffer)", -ret);
    }
    // Polling keeps the JS object alive until close(), like an open socket.
    Ref();
  }

  ~RingBuffer() override { Close(); }

  void Close() override {
    if (poll_ != nullptr) {
      uv_poll_stop(poll_);
      uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
      poll_ = nullptr;
      if (!callback_.IsEmpty() && refed_) {
        // Unref() may only run while the env is alive; the cleanup hook runs before teardown.
        Unref();
      }
      refed_ = false;
    }
    if (rb_ != nullptr) {
      ring_buffer__free(rb_);
      rb_ = nullptr;
    }
    if (fd_ >= 0) {
      close(fd_);
      fd_ = -1;
    }
  }

 private:
  static int OnSample(void* ctx, void* data, size_t size) {
    auto* self = static_cast<RingBuffer*>(ctx);
    self->pending_.push_back(Napi::Buffer<uint8_t>::Copy(self->env_, static_cast<uint8_t*>(data), size));
    // libbpf has already advanced past this record when we return an error, so stop only
    // after keeping it: the batch is delivered and consumption resumes where it stopped.
    return self->pending_.size() >= kMaxBatch ? -EAGAIN : 0;
  }

  // Consumes what is there; returns the number of records delivered.
  size_t Drain(bool fromLoop) {
    size_t total = 0;
    while (rb_ != nullptr) {
      pending_.clear();
      int ret = ring_buffer__consume(rb_);
      if (pending_.empty()) {
        if (ret < 0 && ret != -EAGAIN) ThrowErrno(env_, "ring_buffer__consume", ret);
        break;
      }
      Napi::Array records = Napi::Array::New(env_, pending_.size());
      for (size_t i = 0; i < pending_.size(); i++) records.Set(static_cast<uint32_t>(i), pending_[i]);
      total += pending_.size();
      pending_.clear();
      // From the event loop, MakeCallback runs the microtask and nextTick queues afterwards.
      if (fromLoop)
        callback_.MakeCallback(Value(), {records}, asyncContext_);
      else
        callback_.Call(Value(), {records});
    }
    return total;
  }

  static void OnReadable(uv_poll_t* handle, int status, int events) {
    auto* self = static_cast<RingBuffer*>(handle->data);
    Napi::HandleScope scope(self->env_);
    try {
      self->Drain(true);
    } catch (const Napi::Error& e) {
      napi_fatal_exception(self->env_, e.Value());
    }
  }

  Napi::Value JsConsume(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(Drain(false)));
  }
  Napi::Value JsClose(const Napi::CallbackInfo& info) {
    Close();
    return info.Env().Undefined();
  }
  Napi::Value JsRef(const Napi::CallbackInfo& info) {
    if (poll_) uv_ref(reinterpret_cast<uv_handle_t*>(poll_));
    return info.Env().Undefined();
  }
  Napi::Value JsUnref(const Napi::CallbackInfo& info) {
    if (poll_) uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
    return info.Env().Undefined();
  }

  static constexpr size_t kMaxBatch = 4096;
  Napi::Env env_;
  Napi::FunctionReference callback_;
  Napi::AsyncContext asyncContext_{env_, "bae.RingBuffer"};
  std::vector<Napi::Value> pending_;
  struct ring_buffer* rb_ = nullptr;
  uv_poll_t* poll_ = nullptr;
  int fd_ = -1;
  bool refed_ = true;
};

void InitRingBuffer(Napi::Env env, Napi::Object exports) { exports.Set("RingBuffer", RingBuffer::Define(env)); }

}  // namespace bae
