// The WanVAE_ module tree over ATen. Ref: wan21-reference.md §5.2 (blocks), §5.3 (tree), §5.4 (cache rules).
#include "vae/vae_modules.h"

#if WAN_HAVE_VAE_KERNELS
#include "vae/cuda/vae_kernels.h"

#include <ATen/cuda/CUDAContext.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace wan::vae::detail {

std::string shape_str(const std::vector<int64_t>& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

// ---- weights ------------------------------------------------------------------------------------------

std::vector<int64_t> WeightReader::shape_of(const std::string& key) const {
    WAN_CHECK(store_.contains(key), "%s: missing VAE weight '%s'", store_.source().c_str(), key.c_str());
    return store_.info(key).shape;
}

at::Tensor WeightReader::take(const std::string& key, const std::vector<int64_t>& shape, bool load) {
    WAN_CHECK(store_.contains(key), "%s: missing VAE weight '%s' (expected shape %s)", store_.source().c_str(),
              key.c_str(), shape_str(shape).c_str());
    const io::TensorInfo& info = store_.info(key);
    WAN_CHECK(info.shape == shape, "%s: VAE weight '%s' has shape %s, expected %s", store_.source().c_str(),
              key.c_str(), shape_str(info.shape).c_str(), shape_str(shape).c_str());
    WAN_CHECK(at::isFloatingType(info.dtype), "%s: VAE weight '%s' has dtype %s, expected a floating type",
              store_.source().c_str(), key.c_str(), c10::toString(info.dtype));
    used_.insert(key);
    if (!load) return {};
    return conv_layout(store_.load(key, device_, dtype_));
}

at::Tensor WeightReader::conv_layout(const at::Tensor& weight) const {
    return channels_last_ && weight.dim() == 5 ? weight.contiguous(at::MemoryFormat::ChannelsLast3d) : weight;
}

at::Tensor WeightReader::conv2d_layout(const at::Tensor& weight) const {
    return weight.contiguous(channels_last_ ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous);
}

at::Tensor WeightReader::load_exact(const std::string& key) const {
    WAN_CHECK(used_.count(key) != 0, "VAE weight '%s' read before it was validated", key.c_str());
    return store_.load(key, c10::Device(c10::kCPU), at::kDouble);
}

void WeightReader::check_all_used() const {
    for (const auto& name : store_.names()) {
        WAN_CHECK(used_.count(name) != 0,
                  "%s: unexpected key '%s' (not part of the Wan VAE architecture inferred from the checkpoint)",
                  store_.source().c_str(), name.c_str());
    }
}

// ---- CausalConv3d -------------------------------------------------------------------------------------

void CausalConv3d::load(WeightReader& r, const std::string& prefix, int64_t ci, int64_t co,
                        std::array<int64_t, 3> k, bool load_values) {
    weight = r.take(prefix + ".weight", {co, ci, k[0], k[1], k[2]}, load_values);
    bias = r.take(prefix + ".bias", {co}, load_values);
}

void CausalConv3d::load_cached_3x3x3(WeightReader& r, const std::string& prefix, int64_t ci, int64_t co,
                                     SlotCounter& slots, bool load_values) {
    load(r, prefix, ci, co, {3, 3, 3}, load_values);
    padding = {1, 1, 1};
    slot = slots.take();
    fold(r);
}

namespace {

bool is_channels_last(const at::Tensor& x) { return x.suggest_memory_format() == at::MemoryFormat::ChannelsLast3d; }

/// [b, C, t, h, w] → [b·t, C, h, w], the frames as a batch: a view (2D channels-last) when x is 3D channels-last,
/// else a copy in the default layout.
at::Tensor frames_as_batch(const at::Tensor& x) {
    const int64_t b = x.size(0), c = x.size(1), t = x.size(2), h = x.size(3), w = x.size(4);
    at::Tensor v = x.permute({0, 2, 1, 3, 4}).reshape({b * t, c, h, w});
    return is_channels_last(x) ? v : v.contiguous();
}

/// The inverse of frames_as_batch: [b·t, C, h, w] → [b, C, t, h, w], a view when y is 2D channels-last (3D
/// channels-last then), else a copy in the default layout.
at::Tensor frames_to_5d(const at::Tensor& y, int64_t b, bool channels_last) {
    const int64_t t = y.size(0) / b;
    at::Tensor v = y.view({b, t, y.size(1), y.size(2), y.size(3)}).permute({0, 2, 1, 3, 4});
    if (channels_last) return y.is_contiguous(at::MemoryFormat::ChannelsLast) ? v : v.contiguous(at::MemoryFormat::ChannelsLast3d);
    return v.contiguous();
}

/// An empty time-folded input [b·t, kt·Ci, h, w] for x [b, Ci, t, h, w] (2D channels-last when x is 3D
/// channels-last) and its view [b, t, kt·Ci, h, w].
std::pair<at::Tensor, at::Tensor> empty_folded(const at::Tensor& x, int64_t kt) {
    const int64_t b = x.size(0), ci = x.size(1), t = x.size(2), h = x.size(3), w = x.size(4);
    const auto layout = is_channels_last(x) ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
    at::Tensor in = at::empty({b * t, kt * ci, h, w}, x.options().memory_format(layout));
    return {in, in.view({b, t, kt * ci, h, w})};
}

/// Tap k's block of a folded input as [b, Ci, t, h, w] (a strided view).
at::Tensor tap_block(const at::Tensor& in5, int64_t k, int64_t ci) {
    return in5.narrow(2, k * ci, ci).permute({0, 2, 1, 3, 4});
}

/// Fills taps [0, taps) of the folded input `in5` [b, t, kt·Ci, h, w] of a causal conv with kt taps (Note [VAE
/// speed switches]): output frame τ, tap k reads frame j = τ + k of [zeros | cache | x] — a zero frame for
/// j < zeros, cache frame j − zeros for j < front = kt − 1, input frame j − front after. Copied straight from
/// `cache` and `x`, with no padded sequence in between.
void fill_taps(const at::Tensor& in5, const at::Tensor& x, const at::Tensor& cache, int64_t kt, int64_t taps) {
    const int64_t ci = x.size(1), t = x.size(2);
    const int64_t front = kt - 1, cached = cache.defined() ? cache.size(2) : 0, zeros = front - cached;
    // Frames τ in [tau0, tau1) of one tap's block from frames src0.. of src [b, Ci, n, h, w] (zeros if undefined).
    auto copy_part = [&](const at::Tensor& block, int64_t tau0, int64_t tau1, const at::Tensor& src, int64_t src0) {
        if (tau1 <= tau0) return;
        at::Tensor part = block.narrow(2, tau0, tau1 - tau0);  // [b, Ci, n, h, w]
        if (!src.defined()) {
            part.zero_();
        } else {
            part.copy_(src.narrow(2, src0, tau1 - tau0));
        }
    };
    for (int64_t k = 0; k < taps; ++k) {
        const at::Tensor block = tap_block(in5, k, ci);
        auto clip = [&](int64_t j) { return std::min(std::max(j - k, int64_t{0}), t); };  // j → τ = j − k
        copy_part(block, clip(0), clip(zeros), at::Tensor(), 0);
        copy_part(block, clip(zeros), clip(front), cache, clip(zeros) + k - zeros);
        copy_part(block, clip(front), clip(front + t), x, clip(front) + k - front);
    }
}

/// The time-folded input [b·t, kt·Ci, h, w] of a causal conv with kt taps over [zeros | cache | x].
at::Tensor folded_input(const at::Tensor& x, const at::Tensor& cache, int64_t kt) {
    if (kt == 1) return frames_as_batch(x);
    auto [in, in5] = empty_folded(x, kt);
    fill_taps(in5, x, cache, kt, kt);
    return in;
}

}  // namespace

void CausalConv3d::fold(const WeightReader& r) {
    if (!r.speed().fold_time || !weight.defined()) return;
    const int64_t kt = weight.size(2);
    if (stride[0] != 1 || 2 * padding[0] != kt - 1) return;  // strided or not causal-same: stays a conv3d
    // [Co, Ci, kt, kh, kw] → [Co, kt, Ci, kh, kw] → [Co, kt·Ci, kh, kw]: channel k·Ci + c is tap k of channel c.
    const int64_t co = weight.size(0), ci = weight.size(1);
    weight2d = r.conv2d_layout(weight.permute({0, 2, 1, 3, 4}).reshape({co, kt * ci, weight.size(3), weight.size(4)}));
}

void CausalConv3d::pad_out_channels(const WeightReader& r, int64_t to) {
    const int64_t co = weight.size(0);
    if (co >= to) return;
    out_channels = co;
    weight = r.conv_layout(at::cat({weight, at::zeros({to - co, weight.size(1), weight.size(2), weight.size(3),
                                                        weight.size(4)}, weight.options())}).contiguous());
    bias = at::cat({bias, at::zeros({to - co}, bias.options())});
}

at::Tensor CausalConv3d::forward(const at::Tensor& x, const at::Tensor& cache, int64_t pad_h, StageClock* clock) const {
    const int64_t front = 2 * padding[0];  // causal: all temporal padding goes in front
    const int64_t cached = cache.defined() ? cache.size(2) : 0;
    WAN_CHECK(cached <= front, "VAE cache holds %lld frames, more than the %lld of temporal padding",
              static_cast<long long>(cached), static_cast<long long>(front));
    const int64_t ph = pad_h < 0 ? padding[1] : pad_h;
    at::Tensor y;
    if (weight2d.defined()) {
        const at::Tensor in = folded_input(x, cache, weight.size(2));  // [b·t, kt·Ci, h, w]
        mark(clock, Stage::Pad, level);
        y = frames_to_5d(at::conv2d(in, weight2d, bias, {stride[1], stride[2]}, {ph, padding[2]}), x.size(0),
                         is_channels_last(x));
    } else {
        at::Tensor input = x;  // [b, Ci, t, h, w]
        if (front > 0) {
            std::vector<at::Tensor> parts;
            if (front - cached > 0) {
                const auto layout = x.options().memory_format(x.suggest_memory_format());
                parts.push_back(at::empty({x.size(0), x.size(1), front - cached, x.size(3), x.size(4)}, layout).zero_());
            }
            if (cached > 0) parts.push_back(cache);
            parts.push_back(x);
            input = at::cat(parts, 2);  // [b, Ci, t + 2pt, h, w]
            mark(clock, Stage::Pad, level);
        }
        // Spatial zero padding is symmetric, so the convolution can do it (saves a padded copy).
        y = at::conv3d(input, weight, bias, stride, {0, ph, padding[2]});
    }
    mark(clock, stage, level);
    return out_channels > 0 ? y.narrow(1, 0, out_channels) : y;
}

namespace {

/// The last (up to) 2 frames of a cached site's input, as the slot keeps them (§5.4): with a single new frame
/// the previous last cached frame goes in front. An own copy in x's layout: never pin the whole input.
at::Tensor next_cache(const at::Tensor& x, const CacheSlot& s) {
    const int64_t t = x.size(2);
    const int64_t keep = std::min<int64_t>(2, t);
    at::Tensor next = x.narrow(2, t - keep, keep);
    if (keep < 2 && s.frames.defined()) return at::cat({s.frames.narrow(2, s.frames.size(2) - 1, 1), next}, 2);
    return next.clone(x.suggest_memory_format());
}

/// Note [Decode tail]: when the slot already holds 2 frames of x's shape, writes its new frames into that storage
/// (x's last 2, or the last cached one and x's single frame) and returns true; false leaves the slot alone. Call
/// once the old frames have been read.
bool overwrite_last_frames(CacheSlot& s, const at::Tensor& x) {
    const at::Tensor& f = s.frames;
    if (!f.defined() || f.size(2) != 2 || f.scalar_type() != x.scalar_type() || f.device() != x.device()) return false;
    for (int d : {0, 1, 3, 4}) {
        if (f.size(d) != x.size(d)) return false;
    }
    const int64_t t = x.size(2);
    if (t >= 2) {
        f.copy_(x.narrow(2, t - 2, 2));
    } else {
        f.select(2, 0).copy_(f.select(2, 1));
        f.narrow(2, 1, 1).copy_(x);
    }
    return true;
}

/// The slot's rule of §5.4 after a call on x (next_cache), in the slot's own storage where it can be.
void keep_last_frames(CacheSlot& s, const at::Tensor& x) {
    if (!overwrite_last_frames(s, x)) s.frames = next_cache(x, s);
}

}  // namespace

at::Tensor CausalConv3d::forward_cached(const at::Tensor& x_in, Cache& cache) const {
    CacheSlot& s = cache.at(static_cast<size_t>(slot));
    // Split rows: the rows the kernel reaches come from the neighbours and stand in for the row padding;
    // the slot keeps those haloed frames, so the cached frames line up with the next chunk's input.
    const bool haloed = cache.rows != nullptr && padding[1] > 0;
    const at::Tensor x = haloed ? cache.rows->with_halo(x_in, padding[1]) : x_in;
    at::Tensor y = forward(x, s.frames, haloed ? 0 : -1, cache.clock);
    keep_last_frames(s, x);  // after the conv: the old frames were read into its input
    mark(cache.clock, Stage::CacheSave, level);
    return y;
}

at::Tensor CausalConv3d::forward_cached(at::Tensor x, const RMSNorm& norm, Cache& cache) const {
    const int64_t front = 2 * padding[0];
    if (weight2d.defined() && cache.rows == nullptr && front > 0) return folded_norm_conv(std::move(x), norm, cache);
    if (!cache.speed.cache_buffer || weight2d.defined() || cache.rows != nullptr || front == 0) {
        at::Tensor act = norm.forward_silu(x, cache, level);
        x.reset();
        return forward_cached(act, cache);
    }
    // The padded input [zeros | cached frames | SiLU(norm(x))] is built in place: the activation is written
    // behind the cached frames, so no cat copies the whole input again.
    CacheSlot& s = cache.at(static_cast<size_t>(slot));
    const int64_t t = x.size(2), cached = s.frames.defined() ? s.frames.size(2) : 0;
    WAN_CHECK(cached <= front, "VAE cache holds %lld frames, more than the %lld of temporal padding",
              static_cast<long long>(cached), static_cast<long long>(front));
    at::Tensor buf = at::empty({x.size(0), x.size(1), front + t, x.size(3), x.size(4)},
                               x.options().memory_format(x.suggest_memory_format()));
    if (front > cached) buf.narrow(2, 0, front - cached).zero_();
    if (cached > 0) buf.narrow(2, front - cached, cached).copy_(s.frames);
    mark(cache.clock, Stage::Pad, level);
    const auto layout = x.suggest_memory_format();
    norm.forward_silu(x, cache, level, buf.narrow(2, front, t));
    x.reset();
    // The slot's rule (next_cache) on the activation: its last 2 frames, or the previous last cached frame and
    // the one new frame — both the last 2 frames of buf; a lone first frame stays alone, as upstream keeps it.
    // The old frames are in buf now, so the slot's storage takes the new ones.
    const int64_t keep = t >= 2 || cached > 0 ? 2 : 1;
    const at::Tensor next = buf.narrow(2, front + t - keep, keep);
    if (!overwrite_last_frames(s, next)) s.frames = next.clone(layout);
    mark(cache.clock, Stage::CacheSave, level);
    at::Tensor y = at::conv3d(buf, weight, bias, stride, {0, padding[1], padding[2]});
    mark(cache.clock, stage, level);
    return out_channels > 0 ? y.narrow(1, 0, out_channels) : y;
}

at::Tensor CausalConv3d::folded_norm_conv(at::Tensor x, const RMSNorm& norm, Cache& cache) const {
    // In the folded input the newest tap's block is the activation itself (output frame τ reads input frame τ
    // there), so the norm + SiLU writes it in place and the older taps are copied from it and the cache.
    CacheSlot& s = cache.at(static_cast<size_t>(slot));
    const int64_t kt = weight.size(2), ci = x.size(1);
    auto [in, in5] = empty_folded(x, kt);
    const int64_t b = x.size(0);
    const bool channels_last = is_channels_last(x);
    const at::Tensor act = norm.forward_silu(x, cache, level, tap_block(in5, kt - 1, ci));  // [b, Ci, t, h, w]
    x.reset();
    fill_taps(in5, act, s.frames, kt, kt - 1);
    mark(cache.clock, Stage::Pad, level);
    keep_last_frames(s, act);  // the old frames were copied into the folded input
    mark(cache.clock, Stage::CacheSave, level);
    at::Tensor y = frames_to_5d(at::conv2d(in, weight2d, bias, {stride[1], stride[2]}, {padding[1], padding[2]}),
                                b, channels_last);
    mark(cache.clock, stage, level);
    return out_channels > 0 ? y.narrow(1, 0, out_channels) : y;
}

// ---- RMS_norm ---------------------------------------------------------------------------------------------

void RMSNorm::load(WeightReader& r, const std::string& key, int64_t c, bool images, bool load_values) {
    channels = c;
    std::vector<int64_t> shape = images ? std::vector<int64_t>{c, 1, 1} : std::vector<int64_t>{c, 1, 1, 1};
    at::Tensor g = r.take(key, shape, load_values);
    // (x / n) · sqrt(C) · γ == (x / n) · (sqrt(C) · γ) up to one rounding.
    if (g.defined()) gamma_scaled = (g * std::sqrt(static_cast<double>(c))).reshape({c, 1, 1, 1});
}

at::Tensor RMSNorm::forward(const at::Tensor& x) const {
    const std::vector<int64_t> dims{1};
    if (x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble) {
        // F.normalize: x / max(‖x‖₂, eps) over channels.
        at::Tensor n = at::linalg_vector_norm(x, 2, dims, true).clamp_min_(1e-12);  // [b,1,t,h,w]
        at::Tensor y = x / n;
        return y.mul_(gamma_scaled);
    }
    // Reduced precision: accumulate the norm in f32, then scale in the activation dtype.
    at::Tensor n = at::linalg_vector_norm(x, 2, dims, true, at::kFloat).clamp_min_(1e-12);
    at::Tensor y = x * n.reciprocal_().to(x.scalar_type());
    return y.mul_(gamma_scaled);
}

namespace {

#if WAN_HAVE_VAE_KERNELS
/// The stride between consecutive pixels' channel rows when t [b, C, t, h, w] is such rows, contiguous within
/// each and evenly spaced in (b, t, h, w) order (3D channels-last: C; a channel block of the time-folded input:
/// kt·C); 0 otherwise.
int64_t row_stride(const at::Tensor& t) {
    if (t.dim() != 5 || t.stride(1) != 1) return 0;
    const int64_t r = t.size(4) == 1 ? t.size(1) : t.stride(4);
    int64_t expect = r;
    for (int d : {4, 3, 2, 0}) {
        if (t.size(d) != 1 && t.stride(d) != expect) return 0;
        expect *= t.size(d);
    }
    return r >= t.size(1) ? r : 0;
}

/// The fused kernel's case: bf16 on CUDA, x dense channel rows, out evenly spaced ones (row_stride), C and the
/// stride even and both 4-byte aligned (bf16 pairs).
bool fused_norm_applies(const at::Tensor& x, const at::Tensor& out, const at::Tensor& gamma) {
    auto aligned = [](const at::Tensor& t) { return reinterpret_cast<uintptr_t>(t.data_ptr()) % 4 == 0; };
    const int64_t c = x.size(1), out_stride = row_stride(out);
    return x.is_cuda() && x.scalar_type() == at::kBFloat16 && out.scalar_type() == at::kBFloat16 &&
           gamma.scalar_type() == at::kBFloat16 && gamma.is_contiguous() && c % 2 == 0 && row_stride(x) == c &&
           out_stride % 2 == 0 && out_stride >= c && aligned(x) && aligned(out) && out.sizes() == x.sizes();
}
#endif

}  // namespace

at::Tensor RMSNorm::forward_silu(const at::Tensor& x, Cache& cache, int level, at::Tensor out) const {
#if WAN_HAVE_VAE_KERNELS
    if (cache.speed.fused_norm) {
        at::Tensor dst = out.defined() ? out : at::empty_like(x, x.options().memory_format(x.suggest_memory_format()));
        if (fused_norm_applies(x, dst, gamma_scaled)) {
            const int64_t c = x.size(1);
            cuda::rms_norm_silu_bf16(x.data_ptr(), gamma_scaled.data_ptr(), dst.data_ptr(), row_stride(dst),
                                     x.numel() / c, static_cast<int>(c),
                                     at::cuda::getCurrentCUDAStream(x.device().index()));
            mark(cache.clock, Stage::NormSilu, level);
            return dst;
        }
    }
#endif
    at::Tensor y = forward(x);
    mark(cache.clock, Stage::Norm, level);
    if (out.defined()) {
        at::silu_out(out, y);
    } else {
        out = at::silu_(y);
    }
    mark(cache.clock, Stage::Silu, level);
    return out;
}

// ---- ResidualBlock ----------------------------------------------------------------------------------------

ResidualBlock::ResidualBlock(WeightReader& r, const std::string& p, int64_t ci, int64_t co_, SlotCounter& slots,
                             bool load_values)
    : co(co_) {
    norm0.load(r, p + ".residual.0.gamma", ci, false, load_values);
    conv2.load_cached_3x3x3(r, p + ".residual.2", ci, co, slots, load_values);
    norm3.load(r, p + ".residual.3.gamma", co, false, load_values);
    conv6.load_cached_3x3x3(r, p + ".residual.6", co, co, slots, load_values);
    has_shortcut = ci != co;
    if (has_shortcut) {
        shortcut.load(r, p + ".shortcut", ci, co, {1, 1, 1}, load_values);
        shortcut.stage = Stage::Conv111;
        shortcut.fold(r);
    }
}

at::Tensor ResidualBlock::forward(const at::Tensor& x, Cache& cache) const {
    at::Tensor h = has_shortcut ? shortcut.forward(x, {}, -1, cache.clock) : x;  // [b, Co, t, h, w]
    // The slots cache the post-activation conv inputs (§5.4); Dropout(0) is the identity.
    at::Tensor y = conv2.forward_cached(x, norm0, cache);
    y = conv6.forward_cached(std::move(y), norm3, cache);  // conv2's output is dropped once normalised
    y.add_(h);
    mark(cache.clock, Stage::Add, level);
    return y;
}

// ---- AttentionBlock ---------------------------------------------------------------------------------------

AttentionBlock::AttentionBlock(WeightReader& r, const std::string& p, int64_t c_, bool load_values) : c(c_) {
    norm.load(r, p + ".norm.gamma", c, true, load_values);
    at::Tensor w = r.take(p + ".to_qkv.weight", {3 * c, c, 1, 1}, load_values);
    at::Tensor b = r.take(p + ".to_qkv.bias", {3 * c}, load_values);
    at::Tensor pw = r.take(p + ".proj.weight", {c, c, 1, 1}, load_values);
    at::Tensor pb = r.take(p + ".proj.bias", {c}, load_values);
    if (load_values) {
        qkv_weight = w.reshape({3 * c, c});
        qkv_bias = b.reshape({3 * c, 1});
        proj_weight = pw.reshape({c, c});
        proj_bias = pb.reshape({c, 1});
    }
}

at::Tensor AttentionBlock::forward(const at::Tensor& x, Cache& cache) const {
    const int64_t b = x.size(0), t = x.size(2), h = x.size(3), w = x.size(4), len = h * w;
    at::Tensor n = norm.forward(x);                                        // [b, C, t, h, w]
    at::Tensor seq = n.permute({0, 2, 1, 3, 4}).reshape({b * t, c, len});  // [bt, C, L] (a view when t == 1)
    at::Tensor qkv = at::matmul(qkv_weight, seq).add_(qkv_bias);          // [bt, 3C, L]
    // Tokens are the pixels in row-major order; one head of width C.
    at::Tensor q = qkv.narrow(1, 0, c).transpose(1, 2);                    // [bt, L, C]
    at::Tensor kv = qkv.narrow(1, c, 2 * c);                               // [bt, 2C, L]
    if (cache.rows != nullptr) {
        // Split rows: this rank's queries attend to the keys and values of the whole frame. The token order
        // (pixels row-major) makes the gathered rows the full sequence. [bt, 2C, L_all]
        kv = cache.rows->whole_frame(kv.reshape({b * t, 2 * c, 1, h, w})).flatten(2);
    }
    at::Tensor k = kv.narrow(1, 0, c).transpose(1, 2);                     // [bt, L_all, C]
    at::Tensor v = kv.narrow(1, c, c).transpose(1, 2);                     // [bt, L_all, C]
    at::Tensor o;
#if WAN_TORCH_VERSION >= 200
    o = at::scaled_dot_product_attention(q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1)).squeeze(1);  // [bt, L, C]
#else
    at::Tensor scores = at::matmul(q, k.transpose(1, 2)).div_(std::sqrt(static_cast<double>(c)));  // [bt, L, L_all]
    o = at::matmul(at::softmax(scores, -1), v);                                                    // [bt, L, C]
#endif
    at::Tensor y = at::matmul(proj_weight, o.transpose(1, 2)).add_(proj_bias);  // [bt, C, L]
    y = y.view({b, t, c, h, w}).permute({0, 2, 1, 3, 4});                      // [b, C, t, h, w]
    y = y + x;
    mark(cache.clock, Stage::Attention, level);
    return y;
}

// ---- Resample ---------------------------------------------------------------------------------------------

namespace {

/// Note [Sub-pixel upsample]: the 3×3 kernels W [Co, C, 3, 3] (double) → the phase kernels [4·Co, C, 2, 2],
/// phase (a, e) = R_a · W · R_eᵀ in the output channels [(2a + e)·Co, (2a + e + 1)·Co).
at::Tensor phase_kernels(const at::Tensor& w) {
    // R_a: which kernel rows land on X row i − 1 + a (first row of R_a) and i + a (second).
    const at::Tensor merge = at::tensor({1., 0., 0., 0., 1., 1., 1., 1., 0., 0., 0., 1.}, w.options()).view({2, 2, 3});
    std::vector<at::Tensor> phases;
    for (int64_t a : {0, 1}) {
        for (int64_t e : {0, 1}) phases.push_back(at::matmul(at::matmul(merge[a], w), merge[e].t()));  // [Co, C, 2, 2]
    }
    return at::cat(phases, 0);
}

}  // namespace

Resample::Resample(WeightReader& r, const std::string& p, int64_t c_, ResampleMode m, SlotCounter& slots,
                   bool load_values)
    : mode(m), c(c_) {
    const bool up = mode == ResampleMode::Upsample2d || mode == ResampleMode::Upsample3d;
    co = up ? c / 2 : c;
    WAN_CHECK(!up || c % 2 == 0, "VAE resample '%s': channel count %lld is odd", p.c_str(),
              static_cast<long long>(c));
    at::Tensor w = r.take(p + ".resample.1.weight", {co, c, 3, 3}, load_values);
    bias = r.take(p + ".resample.1.bias", {co}, load_values);
    if (w.defined()) {
        weight = r.conv_layout(w.unsqueeze(2));  // [Co, C, 1, 3, 3]: the per-frame Conv2d as a conv3d
        if (r.speed().fold_time) weight2d = r.conv2d_layout(w);
        if (up && r.speed().subpixel_upsample) {
            const at::Tensor phases = r.to_device(phase_kernels(r.load_exact(p + ".resample.1.weight")));
            phase_weight = r.speed().fold_time ? r.conv2d_layout(phases) : r.conv_layout(phases.unsqueeze(2));
            phase_bias = bias.repeat({4});
        }
    }
    time_conv.stage = Stage::ConvTime;
    if (mode == ResampleMode::Upsample3d) {
        time_conv.load(r, p + ".time_conv", c, 2 * c, {3, 1, 1}, load_values);
        time_conv.padding = {1, 0, 0};
        time_conv.fold(r);
        slot = slots.take();
    } else if (mode == ResampleMode::Downsample3d) {
        time_conv.load(r, p + ".time_conv", c, c, {3, 1, 1}, load_values);
        time_conv.stride = {2, 1, 1};
        slot = slots.take();
    }
}

namespace {

/// Nearest ×`up` in h and w ("nearest-exact" at scale 2 is plain pixel replication; `up` 1: none) of a
/// [b, C, T, S, h, w] view, flattening (T, S) into the time axis: one copy for the frame interleave and the
/// upsampling together (none when S and `up` are 1 and the view is dense), written in the layout the convolution
/// that follows reads (channels-last 3D when the source is channels-last).
at::Tensor interleave_upsample(const at::Tensor& v, bool channels_last, int64_t up = 2) {
    const int64_t b = v.size(0), c = v.size(1), t = v.size(2), s = v.size(3), h = v.size(4), w = v.size(5);
    if (channels_last) {
        return v.permute({0, 2, 3, 4, 5, 1})                 // [b, T, S, h, w, C]
            .unsqueeze(4).unsqueeze(6)                       // [b, T, S, h, 1, w, 1, C]
            .expand({b, t, s, h, up, w, up, c})
            .reshape({b, t * s, up * h, up * w, c})          // one copy, C innermost
            .permute({0, 4, 1, 2, 3});                       // [b, C, T·S, 2h, 2w] channels-last 3D
    }
    return v.unsqueeze(5).unsqueeze(7)                 // [b, C, T, S, h, 1, w, 1]
        .expand({b, c, t, s, h, up, w, up})
        .reshape({b, c, t * s, up * h, up * w});       // [b, C, T·S, 2h, 2w]
}

/// Note [Sub-pixel upsample]: the phase conv's result y [b, 4·Co, T, h + 1, w + 1] (any strides) → the 2× map
/// [b, Co, T, 2h, 2w], out[.., c, τ, 2i + a, 2j + e] = y[.., (2a + e)·Co + c, τ, i + a, j + e]; one copy, into
/// channels-last 3D when asked.
at::Tensor interleave_phases(const at::Tensor& y, int64_t co, bool channels_last) {
    const int64_t b = y.size(0), t = y.size(2), h = y.size(3) - 1, w = y.size(4) - 1;
    const auto st = y.strides();
    // Index (b, c, τ, i, a, j, e): a moves one row and 2·Co channels on, e one column and Co channels.
    const at::Tensor v = y.as_strided({b, co, t, h, 2, w, 2},
                                      {st[0], st[1], st[2], st[3], st[3] + 2 * co * st[1], st[4], st[4] + co * st[1]},
                                      y.storage_offset());
    if (channels_last) {
        return v.permute({0, 2, 3, 4, 5, 6, 1}).contiguous().view({b, t, 2 * h, 2 * w, co}).permute({0, 4, 1, 2, 3});
    }
    return v.contiguous().view({b, co, t, 2 * h, 2 * w});
}

}  // namespace

at::Tensor Resample::upsample_conv(const at::Tensor& x, int64_t s, bool channels_last, Cache& cache) const {
    if (phase_weight.defined()) return subpixel_conv(x, s, channels_last, cache);
    // Split rows: one halo row before upsampling gives two after it, of which the conv needs one per side;
    // cheaper to send than a row of the upsampled map, and the edge zeros stay zeros.
    const bool haloed = cache.rows != nullptr;
    const at::Tensor xh = haloed ? cache.rows->with_halo(x, 1) : x;  // [b, S·C, t, h(+2), w]
    const int64_t b = xh.size(0), t = xh.size(2), h = xh.size(3), w = xh.size(4);
    // out[:, :, S·τ+j] = x[:, j·C:(j+1)·C, τ]
    at::Tensor v = xh.reshape({b, s, c, t, h, w}).permute({0, 2, 3, 1, 4, 5});  // [b, C, t, S, h, w]
    at::Tensor up = interleave_upsample(v, channels_last);                   // [b, C, S·t, 2h, 2w]
    if (haloed) up = up.narrow(3, 1, up.size(3) - 2);                        // one halo row each side
    mark(cache.clock, Stage::Upsample, level + 1);
    at::Tensor y = frame_conv(up, {1, 1}, {haloed ? 0 : 1, 1});  // [b, C/2, S·t, 2h', 2w]
    mark(cache.clock, Stage::ConvSpatial, level + 1);
    return y;
}

at::Tensor Resample::subpixel_conv(const at::Tensor& x, int64_t s, bool channels_last, Cache& cache) const {
    // Split rows: the halo row on each side stands for the zero row of the padding (as in upsample_conv).
    const bool haloed = cache.rows != nullptr;
    const at::Tensor xh = haloed ? cache.rows->with_halo(x, 1) : x;  // [b, S·C, t, h(+2), w]
    const int64_t b = xh.size(0), t = xh.size(2), h = xh.size(3), w = xh.size(4);
    at::Tensor low = xh;  // [b, C, S·t, h, w]: the frames of the S channel groups, interleaved
    if (s > 1) {
        low = interleave_upsample(xh.reshape({b, s, c, t, h, w}).permute({0, 2, 3, 1, 4, 5}), channels_last, 1);
        mark(cache.clock, Stage::Upsample, level + 1);
    }
    const std::array<int64_t, 2> pad{haloed ? 0 : 1, 1};
    at::Tensor y;  // [b, 4·Co, S·t, h' + 1, w + 1]
    if (phase_weight.dim() == 5) {
        y = at::conv3d(low, phase_weight, phase_bias, 1, {0, pad[0], pad[1]});
    } else {  // fold_time: conv2d over the frames as a batch, its result viewed as 5-D
        const at::Tensor y2 = at::conv2d(frames_as_batch(low), phase_weight, phase_bias, 1, {pad[0], pad[1]});
        y = y2.view({b, low.size(2), y2.size(1), y2.size(2), y2.size(3)}).permute({0, 2, 1, 3, 4});
    }
    mark(cache.clock, Stage::ConvSpatial, level + 1);  // the upsample's conv, as in the plain path
    at::Tensor out = interleave_phases(y, co, channels_last);  // [b, C/2, S·t, 2h', 2w]
    mark(cache.clock, Stage::Upsample, level + 1);
    return out;
}

at::Tensor Resample::frame_conv(const at::Tensor& x, std::array<int64_t, 2> st, std::array<int64_t, 2> pad) const {
    if (!weight2d.defined()) return at::conv3d(x, weight, bias, {1, st[0], st[1]}, {0, pad[0], pad[1]});
    return frames_to_5d(at::conv2d(frames_as_batch(x), weight2d, bias, {st[0], st[1]}, {pad[0], pad[1]}), x.size(0),
                        is_channels_last(x));
}

at::Tensor Resample::forward(const at::Tensor& x, Cache& cache) const {
    const int64_t t = x.size(2);
    switch (mode) {
    case ResampleMode::Upsample2d: return upsample_conv(x, 1, is_channels_last(x), cache);  // [b, C/2, t, 2h, 2w]
    case ResampleMode::Upsample3d: {
        CacheSlot& s = cache.at(static_cast<size_t>(slot));
        if (s.empty()) {
            // PARITY "Rep" (§5.4): the first chunk skips the temporal up-convolution, 1 frame stays 1 frame.
            s.rep = true;
            return upsample_conv(x, 1, is_channels_last(x), cache);
        }
        at::Tensor y = time_conv.forward(x, s.rep ? at::Tensor() : s.frames, -1, cache.clock);  // [b, 2C, t, h, w]
        // The slot keeps the last 2 input frames, once the conv has read the old ones (Note [Decode tail]).
        if (!overwrite_last_frames(s, x)) {
            const int64_t keep = std::min<int64_t>(2, t);
            at::Tensor next = x.narrow(2, t - keep, keep);
            if (keep < 2 && s.frames.defined()) {
                next = at::cat({s.frames.narrow(2, s.frames.size(2) - 1, 1), next}, 2);
            } else if (keep < 2) {  // after "Rep": the history starts from zeros
                next = at::cat({at::zeros_like(next), next}, 2);
            } else {
                next = next.clone(x.suggest_memory_format());
            }
            s.frames = next;
        }
        mark(cache.clock, Stage::CacheSave, level);
        s.rep = false;
        return upsample_conv(y, 2, is_channels_last(x), cache);  // [b, C/2, 2t, 2h, 2w]
    }
    case ResampleMode::Downsample2d:
    case ResampleMode::Downsample3d: {
        // ZeroPad2d(left 0, right 1, top 0, bottom 1), then a 3×3 stride-2 conv per frame.
        at::Tensor padded = at::constant_pad_nd(x, {0, 1, 0, 1}, 0);                // [b, C, t, h+1, w+1]
        at::Tensor y = frame_conv(padded, {2, 2}, {0, 0});                           // [b, C, t, h/2, w/2]
        if (mode == ResampleMode::Downsample2d) return y;
        CacheSlot& s = cache.at(static_cast<size_t>(slot));
        if (s.empty()) {  // first chunk: remember it, no temporal conv
            s.frames = y.clone(at::MemoryFormat::Contiguous);
            return y;
        }
        at::Tensor last = y.narrow(2, y.size(2) - 1, 1).clone(at::MemoryFormat::Contiguous);
        at::Tensor out = time_conv.forward(at::cat({s.frames.narrow(2, s.frames.size(2) - 1, 1), y}, 2));
        s.frames = last;
        return out;  // [b, C, (t+1-3)/2+1, h/2, w/2]
    }
    }
    WAN_THROW("VAE resample: unknown mode");
}

// ---- Encoder / Decoder ------------------------------------------------------------------------------------

namespace {

void call_hook(const Hook* hook, const std::string& name, const at::Tensor& x) {
    if (hook != nullptr && *hook) (*hook)(name, x);
}

at::Tensor run_head(const RMSNorm& norm, const CausalConv3d& conv, at::Tensor x, Cache& cache) {
    return conv.forward_cached(std::move(x), norm, cache);
}

}  // namespace

Encoder::Encoder(WeightReader& r, const VAEConfig& cfg, bool load_values) {
    SlotCounter slots;
    std::vector<int64_t> dims{cfg.dim};  // [dim·1, dim·m0, dim·m1, ...]
    for (int64_t m : cfg.dim_mult) dims.push_back(cfg.dim * m);
    conv1_.load_cached_3x3x3(r, "encoder.conv1", 3, dims[0], slots, load_values);
    int index = 0;
    int64_t out = dims[0];
    const size_t stages = cfg.dim_mult.size();
    for (size_t i = 0; i < stages; ++i) {
        int64_t in = dims[i];
        out = dims[i + 1];
        for (int64_t j = 0; j < cfg.num_res_blocks; ++j) {
            downsamples_.push_back(std::make_unique<ResidualBlock>(
                r, "encoder.downsamples." + std::to_string(index++), in, out, slots, load_values));
            in = out;
        }
        if (i + 1 != stages) {
            const ResampleMode mode =
                cfg.temporal_downsample.at(i) ? ResampleMode::Downsample3d : ResampleMode::Downsample2d;
            downsamples_.push_back(std::make_unique<Resample>(
                r, "encoder.downsamples." + std::to_string(index++), out, mode, slots, load_values));
        }
    }
    middle0_ = std::make_unique<ResidualBlock>(r, "encoder.middle.0", out, out, slots, load_values);
    middle1_ = std::make_unique<AttentionBlock>(r, "encoder.middle.1", out, load_values);
    middle2_ = std::make_unique<ResidualBlock>(r, "encoder.middle.2", out, out, slots, load_values);
    head0_.load(r, "encoder.head.0.gamma", out, false, load_values);
    head2_.load_cached_3x3x3(r, "encoder.head.2", out, 2 * cfg.z_dim, slots, load_values);
    num_slots_ = slots.next;
}

at::Tensor Encoder::forward(const at::Tensor& x, Cache& cache, const Hook* hook) const {
    at::Tensor y = conv1_.forward_cached(x, cache);
    call_hook(hook, "encoder.conv1", y);
    for (size_t i = 0; i < downsamples_.size(); ++i) {
        y = downsamples_[i]->forward(y, cache);
        call_hook(hook, "encoder.downsamples." + std::to_string(i), y);
    }
    y = middle0_->forward(y, cache);
    y = middle1_->forward(y, cache);
    y = middle2_->forward(y, cache);
    call_hook(hook, "encoder.middle", y);
    y = run_head(head0_, head2_, y, cache);
    call_hook(hook, "encoder.head", y);
    return y;
}

Decoder::Decoder(WeightReader& r, const VAEConfig& cfg) {
    SlotCounter slots;
    std::vector<int64_t> dims{cfg.dim * cfg.dim_mult.back()};  // [dim·m_last, reversed dim·m ...]
    for (auto it = cfg.dim_mult.rbegin(); it != cfg.dim_mult.rend(); ++it) dims.push_back(cfg.dim * *it);
    conv1_.load_cached_3x3x3(r, "decoder.conv1", cfg.z_dim, dims[0], slots, true);  // level 0, as the middle
    middle0_ = std::make_unique<ResidualBlock>(r, "decoder.middle.0", dims[0], dims[0], slots, true);
    middle1_ = std::make_unique<AttentionBlock>(r, "decoder.middle.1", dims[0], true);
    middle2_ = std::make_unique<ResidualBlock>(r, "decoder.middle.2", dims[0], dims[0], slots, true);
    int index = 0;
    int64_t out = dims[0];
    const size_t stages = cfg.dim_mult.size();
    for (size_t i = 0; i < stages; ++i) {
        // Every resample halves the channels, so stages after the first start at half the previous width.
        int64_t in = i == 0 ? dims[i] : dims[i] / 2;
        out = dims[i + 1];
        for (int64_t j = 0; j < cfg.num_res_blocks + 1; ++j) {
            upsamples_.push_back(std::make_unique<ResidualBlock>(
                r, "decoder.upsamples." + std::to_string(index++), in, out, slots, true));
            upsamples_.back()->set_level(static_cast<int>(i));
            in = out;
        }
        if (i + 1 != stages) {
            // temperal_upsample = reversed temperal_downsample
            const bool temporal = cfg.temporal_downsample.at(stages - 2 - i);
            const ResampleMode mode = temporal ? ResampleMode::Upsample3d : ResampleMode::Upsample2d;
            upsamples_.push_back(std::make_unique<Resample>(r, "decoder.upsamples." + std::to_string(index++), out,
                                                            mode, slots, true));
            upsamples_.back()->set_level(static_cast<int>(i));
            if (temporal) tail_begin_ = upsamples_.size();
        }
    }
    head0_.load(r, "decoder.head.0.gamma", out, false, true);
    head2_.load_cached_3x3x3(r, "decoder.head.2", out, 3, slots, true);
    head2_.level = static_cast<int>(stages) - 1;
    if (r.speed().pad_head) {
        head2_.pad_out_channels(r, 8);
        head2_.weight2d = at::Tensor();
        head2_.fold(r);  // again, from the padded weight
    }
    num_slots_ = slots.next;
}

at::Tensor Decoder::forward(const at::Tensor& x, Cache& cache, const Hook* hook) const {
    at::Tensor y = conv1_.forward_cached(x, cache);
    call_hook(hook, "decoder.conv1", y);
    y = middle0_->forward(y, cache);
    y = middle1_->forward(y, cache);
    y = middle2_->forward(y, cache);
    call_hook(hook, "decoder.middle", y);
    for (size_t i = 0; i < tail_begin_; ++i) {
        y = upsamples_[i]->forward(y, cache);
        call_hook(hook, "decoder.upsamples." + std::to_string(i), y);
    }
    return forward_tail(std::move(y), cache, hook);
}

at::Tensor Decoder::forward_tail(at::Tensor x, Cache& cache, const Hook* hook) const {
    const int64_t t = x.size(2), k = cache.speed.tail_frames;
    if (k <= 0 || k >= t) return run_tail(std::move(x), cache, hook);
    // Each group's layer outputs, in call order, for the hook: it gets them over the whole chunk afterwards.
    std::vector<std::pair<std::string, std::vector<at::Tensor>>> seen;
    size_t call = 0;
    const Hook collect = [&](const std::string& name, const at::Tensor& out) {
        if (call == seen.size()) seen.push_back({name, {}});
        seen[call++].second.push_back(out);
    };
    const bool hooked = hook != nullptr && *hook;
    std::vector<at::Tensor> outs;
    for (int64_t f = 0; f < t; f += k) {
        call = 0;
        outs.push_back(run_tail(x.narrow(2, f, std::min(k, t - f)), cache, hooked ? &collect : nullptr));
    }
    x.reset();
    for (const auto& [name, parts] : seen) (*hook)(name, at::cat(parts, 2));
    return at::cat(outs, 2);  // [b, 3, t, H, W]
}

at::Tensor Decoder::run_tail(at::Tensor x, Cache& cache, const Hook* hook) const {
    for (size_t i = tail_begin_; i < upsamples_.size(); ++i) {
        x = upsamples_[i]->forward(x, cache);
        call_hook(hook, "decoder.upsamples." + std::to_string(i), x);
    }
    x = run_head(head0_, head2_, std::move(x), cache);
    call_hook(hook, "decoder.head", x);
    return x;
}

}  // namespace wan::vae::detail
