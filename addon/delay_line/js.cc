// The delay line's JS surface: the addon's DelayLine class, a thin wrapper over one Line. Typed by
// hand in src/emulation/native.ts; src/emulation/delay-line.ts checks every option and argument
// before they get here, so the checks below only guard against misuse.
//
// close() never blocks the event loop: it asks the line to stop and returns a promise. The
// line's thread flushes, releases the sockets and the UMEM, and as its last act calls a
// thread-safe function; on the JS thread that joins the (finished) thread and resolves the
// promise with { flushed, dropped }. A second close() returns the same promise. While a close is
// pending the wrapper holds a strong reference to itself, so that it is not collected under its
// thread, and the thread-safe function keeps the event loop alive until the flush is over.
//
// Close() is the last resort that the destructor and the environment cleanup hook share (the
// Closable rule of common.h): it makes the same stop request and then waits for the thread. A
// cleanup hook that finds a close() pending waits for it there; the thread-safe function's own
// cleanup has already closed it by then, so the thread's last call is refused, not delivered.
#include <net/if.h>

#include <memory>
#include <optional>

#include "../common.h"
#include "../delay_line.h"
#include "line.h"

namespace bae {
namespace {

using delay::ClassParams;
using delay::Counters;
using delay::KernelCounters;
using delay::Line;

// UMEM frame sizes the line supports (a power of two the kernel accepts as a chunk size).
constexpr uint32_t kFrameSizeSmall = 2048;
constexpr uint32_t kFrameSizeLarge = 4096;

[[noreturn]] void Misuse(Napi::Env env, const std::string& what) {
  throw Napi::TypeError::New(env, "DelayLine: " + what + " (checked in TypeScript)");
}

Napi::Value Field(Napi::Env env, Napi::Object o, const char* name, bool (Napi::Value::*is)() const, const char* kind) {
  Napi::Value v = o.Get(name);
  if (!(v.*is)()) Misuse(env, std::string("option ") + name + " must be " + kind);
  return v;
}
uint32_t UintField(Napi::Env env, Napi::Object o, const char* name) {
  return Field(env, o, name, &Napi::Value::IsNumber, "a number").As<Napi::Number>().Uint32Value();
}
int32_t IntField(Napi::Env env, Napi::Object o, const char* name) {
  return Field(env, o, name, &Napi::Value::IsNumber, "a number").As<Napi::Number>().Int32Value();
}
int64_t Int64Field(Napi::Env env, Napi::Object o, const char* name) {
  return Field(env, o, name, &Napi::Value::IsNumber, "a number").As<Napi::Number>().Int64Value();
}
bool BoolField(Napi::Env env, Napi::Object o, const char* name) {
  return Field(env, o, name, &Napi::Value::IsBoolean, "a boolean").As<Napi::Boolean>().Value();
}
bool Absent(Napi::Value v) { return v.IsUndefined() || v.IsNull(); }

class DelayLine : public Napi::ObjectWrap<DelayLine>, public Closable {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "DelayLine",
                       {
                           StaticMethod<&DelayLine::IfIndex>("ifindex"),
                           InstanceMethod<&DelayLine::JsStart>("start"),
                           InstanceMethod<&DelayLine::JsSetParams>("setParams"),
                           InstanceMethod<&DelayLine::JsSetSeed>("setSeed"),
                           InstanceMethod<&DelayLine::JsStats>("stats"),
                           InstanceMethod<&DelayLine::JsRecordDelays>("recordDelays"),
                           InstanceMethod<&DelayLine::JsTakeDelays>("takeDelays"),
                           InstanceMethod<&DelayLine::JsClose>("close"),
                           InstanceAccessor<&DelayLine::JsClosed>("closed"),
                       });
  }

  // new DelayLine({ xskMapFd, ports: [{ ifname, egress, keys }], classes, frames, frameSize,
  //   ringSize, maxInFlight, overflowPass, spinNs, realtime, maxLateNs, cpu?, transmit? })
  explicit DelayLine(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DelayLine>(info), Closable(info.Env()) {
    Napi::Env env = info.Env();
    if (info.Length() != 1 || !info[0].IsObject()) Misuse(env, "one options object");
    Napi::Object o = info[0].As<Napi::Object>();
    Line::Config cfg;
    cfg.classes = UintField(env, o, "classes");
    cfg.frames = UintField(env, o, "frames");
    cfg.frameSize = UintField(env, o, "frameSize");
    cfg.ringSize = UintField(env, o, "ringSize");
    cfg.maxInFlight = UintField(env, o, "maxInFlight");
    cfg.overflowPass = BoolField(env, o, "overflowPass");
    cfg.spinNs = Int64Field(env, o, "spinNs");
    cfg.realtime = BoolField(env, o, "realtime");
    cfg.maxLateNs = Int64Field(env, o, "maxLateNs");
    cfg.cpu = Absent(o.Get("cpu")) ? -1 : IntField(env, o, "cpu");
    const int xskMapFd = IntField(env, o, "xskMapFd");
    if (cfg.classes == 0 || cfg.classes > kDelayClassesMax ||
        (cfg.frameSize != kFrameSizeSmall && cfg.frameSize != kFrameSizeLarge) || cfg.frames == 0 ||
        (cfg.ringSize & (cfg.ringSize - 1)) != 0 || cfg.maxLateNs <= 0 || cfg.cpu < -1 || cfg.cpu >= CPU_SETSIZE)
      throw Napi::RangeError::New(env, "DelayLine: options out of range (checked in TypeScript)");

    Napi::Value portsValue = Field(env, o, "ports", &Napi::Value::IsArray, "an array");
    Napi::Array ports = portsValue.As<Napi::Array>();
    if (ports.Length() == 0 || ports.Length() > kDelayPortsMax)
      throw Napi::RangeError::New(env, "DelayLine: 1 to " + std::to_string(kDelayPortsMax) + " ports");
    std::vector<Line::PortSpec> specs(ports.Length());
    for (uint32_t p = 0; p < ports.Length(); p++) {
      if (!ports.Get(p).IsObject()) Misuse(env, "each port must be { ifname, egress, keys }");
      Napi::Object spec = ports.Get(p).As<Napi::Object>();
      specs[p].ifname = Field(env, spec, "ifname", &Napi::Value::IsString, "a string").As<Napi::String>().Utf8Value();
      uint32_t egress = UintField(env, spec, "egress");
      if (egress >= ports.Length()) throw Napi::RangeError::New(env, "DelayLine: egress port out of range");
      specs[p].egress = static_cast<uint16_t>(egress);
      Napi::Array keys = Field(env, spec, "keys", &Napi::Value::IsArray, "an array").As<Napi::Array>();
      if (keys.Length() != cfg.classes) throw Napi::RangeError::New(env, "DelayLine: one XSKMAP key per class");
      for (uint32_t c = 0; c < cfg.classes; c++) specs[p].keys.push_back(keys.Get(c).As<Napi::Number>().Uint32Value());
    }
    Line::TransmitSpec transmit;
    if (Napi::Value t = o.Get("transmit"); !Absent(t)) {
      if (!t.IsObject()) Misuse(env, "option transmit must be { programFd, slotsFd, controlFd }");
      Napi::Object to = t.As<Napi::Object>();
      transmit.programFd = IntField(env, to, "programFd");
      transmit.slotsFd = IntField(env, to, "slotsFd");
      transmit.controlFd = IntField(env, to, "controlFd");
    }
    line_ = std::make_unique<Line>(cfg);
    line_->Open(env, xskMapFd, specs, transmit);
  }

  ~DelayLine() override { Close(); }

  void Close() override {
    if (!line_) return;
    line_->RequestStop(nullptr);  // a pending close() keeps its own request
    line_->Join();
    Untrack();
  }

 private:
  static Napi::Value IfIndex(const Napi::CallbackInfo& info) {
    std::string name = ArgString(info, 0);
    unsigned idx = if_nametoindex(name.c_str());
    if (idx == 0) ThrowErrno(info.Env(), "if_nametoindex(" + name + ")", errno ? errno : ENODEV);
    return Napi::Number::New(info.Env(), idx);
  }

  void CheckOpen(Napi::Env env, const char* op) {
    if (line_->stopRequested()) throw Napi::Error::New(env, std::string("DelayLine.") + op + ": the delay line is closed");
  }

  Napi::Value JsStart(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env, "start");
    if (int err = line_->Start(env)) {
      Close();
      ThrowErrno(env, "pthread_setaffinity_np(delay line thread, CPU " + std::to_string(line_->cpu()) + ")", err);
    }
    return env.Undefined();
  }

  // setParams(classId, delayNs, jitterNs, distribution, delayRho, duplicate, duplicateRho,
  //           reorder, reorderRho, reorderGap); probabilities as thresholds (0..2^32), rho 0..2^32-1
  Napi::Value JsSetParams(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env, "setParams");
    uint32_t c = ArgUint(info, 0);
    if (c >= line_->classes()) throw Napi::RangeError::New(env, "DelayLine.setParams: class out of range");
    ClassParams p;
    p.delayNs = info[1].As<Napi::Number>().Int64Value();
    p.jitterNs = info[2].As<Napi::Number>().Int64Value();
    p.distribution = ArgUint(info, 3);
    p.delayRho = ArgUint(info, 4);
    p.duplicate = static_cast<uint64_t>(info[5].As<Napi::Number>().Int64Value());
    p.duplicateRho = ArgUint(info, 6);
    p.reorder = static_cast<uint64_t>(info[7].As<Napi::Number>().Int64Value());
    p.reorderRho = ArgUint(info, 8);
    p.reorderGap = std::max<uint32_t>(ArgUint(info, 9), 1);
    line_->SetParams(c, p);
    return env.Undefined();
  }

  Napi::Value JsSetSeed(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env, "setSeed");
    if (!info[0].IsBigInt()) Misuse(env, "setSeed takes a bigint");
    bool lossless;
    line_->SetSeed(info[0].As<Napi::BigInt>().Uint64Value(&lossless));
    return env.Undefined();
  }

  Napi::Value JsStats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto num = [&](uint64_t v) { return Napi::Number::New(env, static_cast<double>(v)); };
    auto load = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
    const Counters& k = line_->counters();
    Napi::Object o = Napi::Object::New(env);
    o.Set("received", num(load(k.received)));
    o.Set("transmitted", num(load(k.transmitted)));
    o.Set("overflow", num(load(k.overflow)));
    o.Set("duplicated", num(load(k.duplicated)));
    o.Set("duplicateSkipped", num(load(k.duplicateSkipped)));
    o.Set("reordered", num(load(k.reordered)));
    o.Set("txErrors", num(load(k.txErrors)));
    o.Set("txDropped", num(load(k.txDropped)));
    o.Set("lateDropped", num(load(k.lateDropped)));
    o.Set("flushedAtClose", num(load(k.flushedAtClose)));
    o.Set("droppedAtClose", num(load(k.droppedAtClose)));
    o.Set("inFlight", num(load(k.inFlight)));
    o.Set("latenessMaxNs", num(load(k.latenessMax)));
    o.Set("realtime", Napi::Boolean::New(env, k.realtime.load(std::memory_order_relaxed)));
    o.Set("cpu", Napi::Number::New(env, line_->cpu()));
    o.Set("txBudget", num(line_->txBudget()));
    o.Set("live", Napi::Boolean::New(env, k.live.load(std::memory_order_relaxed)));
    o.Set("liveCalls", num(load(k.liveCalls)));
    o.Set("liveTransmitted", num(load(k.liveTransmitted)));
    o.Set("liveErrno", Napi::Number::New(env, k.liveErrno.load(std::memory_order_relaxed)));
    Napi::Array classes = Napi::Array::New(env, line_->classes());
    for (uint32_t c = 0; c < line_->classes(); c++) {
      Napi::Object co = Napi::Object::New(env);
      co.Set("received", num(load(k.classReceived[c])));
      co.Set("transmitted", num(load(k.classTransmitted[c])));
      co.Set("overflow", num(load(k.classOverflow[c])));
      classes.Set(c, co);
    }
    o.Set("classes", classes);
    // Lateness histogram: [lowNs, highNs, count] for each non-empty bucket.
    Napi::Array hist = Napi::Array::New(env);
    uint32_t n = 0;
    for (unsigned i = 0; i < delay::kLatenessBuckets; i++) {
      uint64_t count = load(k.lateness[i]);
      if (!count) continue;
      Napi::Array b = Napi::Array::New(env, 3);
      b.Set(0u, num(delay::LatenessBucketLow(i)));
      b.Set(1u, num(i + 1 < delay::kLatenessBuckets ? delay::LatenessBucketLow(i + 1) : UINT64_MAX));
      b.Set(2u, num(count));
      hist.Set(n++, b);
    }
    o.Set("lateness", hist);
    KernelCounters kc = line_->KernelStats();
    Napi::Object ko = Napi::Object::New(env);
    ko.Set("rxDropped", num(kc.rxDropped));
    ko.Set("rxInvalidDescs", num(kc.rxInvalid));
    ko.Set("txInvalidDescs", num(kc.txInvalid));
    ko.Set("rxRingFull", num(kc.rxRingFull));
    ko.Set("fillRingEmpty", num(kc.fillRingEmpty));
    ko.Set("txRingEmpty", num(kc.txRingEmpty));
    o.Set("kernel", ko);
    return o;
  }

  // recordDelays(capacity): from now on keep the delay drawn for each delayed frame, up to
  // capacity samples (0 stops). Earlier samples are discarded.
  Napi::Value JsRecordDelays(const Napi::CallbackInfo& info) {
    line_->RecordDelays(ArgUint(info, 0));
    return info.Env().Undefined();
  }

  // takeDelays() -> { classes: Uint8Array, delaysNs: Float64Array }; empties the record.
  Napi::Value JsTakeDelays(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    line_->TakeDelays([&](const std::vector<int64_t>& delaysNs, const std::vector<uint8_t>& classIds) {
      size_t n = delaysNs.size();
      auto delays = Napi::Float64Array::New(env, n);
      auto classes = Napi::Uint8Array::New(env, n);
      for (size_t i = 0; i < n; i++) {
        delays[i] = static_cast<double>(delaysNs[i]);
        classes[i] = classIds[i];
      }
      o.Set("classes", classes);
      o.Set("delaysNs", delays);
    });
    return o;
  }

  Napi::Object CloseResult(Napi::Env env) {
    const Counters& k = line_->counters();
    Napi::Object o = Napi::Object::New(env);
    o.Set("flushed", Napi::Number::New(env, static_cast<double>(k.flushedAtClose.load(std::memory_order_relaxed))));
    o.Set("dropped", Napi::Number::New(env, static_cast<double>(k.droppedAtClose.load(std::memory_order_relaxed))));
    return o;
  }

  // close() -> Promise<{ flushed, dropped }>, the same promise every time.
  Napi::Value JsClose(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!closePromise_.IsEmpty()) return closePromise_.Value();
    Napi::Promise::Deferred deferred = Napi::Promise::Deferred::New(env);
    closePromise_ = Napi::Persistent(deferred.Promise().As<Napi::Object>());
    napi_threadsafe_function done = nullptr;
    // A line already stopped (start() failed and closed it) has nothing left to wait for; and
    // without a thread-safe function there is no way to be told, so wait here instead.
    if (line_->stopRequested() ||
        napi_create_threadsafe_function(env, nullptr, nullptr, Napi::String::New(env, "bae.DelayLine.close"), 0, 1,
                                        nullptr, nullptr, this, &DelayLine::OnLineFinished, &done) != napi_ok) {
      Close();
      deferred.Resolve(CloseResult(env));
      return deferred.Promise();
    }
    closeDeferred_.emplace(deferred);
    Ref();
    line_->RequestStop([done] {
      // Refused (napi_closing) when the environment is going away: its cleanup hook joins.
      napi_call_threadsafe_function(done, nullptr, napi_tsfn_nonblocking);
      napi_release_threadsafe_function(done, napi_tsfn_release);
    });
    return deferred.Promise();
  }

  // On the JS thread, once the line's thread has flushed and released everything. `env` is null
  // when the environment went away first; Close() from its cleanup hook did the joining then.
  static void OnLineFinished(napi_env env, napi_value, void* context, void*) {
    if (env == nullptr) return;
    auto* self = static_cast<DelayLine*>(context);
    Napi::Env e(env);
    Napi::HandleScope scope(e);
    try {
      self->Close();  // joins a thread that has already finished
      if (self->closeDeferred_) {
        self->closeDeferred_->Resolve(self->CloseResult(e));
        self->closeDeferred_.reset();
      }
    } catch (const Napi::Error& err) {
      err.ThrowAsJavaScriptException();
    }
    self->Unref();
  }

  Napi::Value JsClosed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), line_->stopRequested()); }

  std::unique_ptr<Line> line_;
  Napi::ObjectReference closePromise_;
  std::optional<Napi::Promise::Deferred> closeDeferred_;
};

}  // namespace

void InitDelayLine(Napi::Env env, Napi::Object exports) { exports.Set("DelayLine", DelayLine::Define(env)); }

}  // namespace bae
