// The WanVAE_ module tree over ATen. Ref: wan21-reference.md §5.2 (blocks), §5.3 (tree), §5.4 (cache rules).
#include "vae/vae_modules.h"

#include <algorithm>
#include <cmath>

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
}

at::Tensor CausalConv3d::forward(const at::Tensor& x, const at::Tensor& cache, int64_t pad_h) const {
    const int64_t front = 2 * padding[0];  // causal: all temporal padding goes in front
    at::Tensor input = x;                  // [b, Ci, t, h, w]
    if (front > 0) {
        const int64_t cached = cache.defined() ? cache.size(2) : 0;
        WAN_CHECK(cached <= front, "VAE cache holds %lld frames, more than the %lld of temporal padding",
                  static_cast<long long>(cached), static_cast<long long>(front));
        std::vector<at::Tensor> parts;
        if (front - cached > 0) {
            const auto layout = x.options().memory_format(x.suggest_memory_format());
            parts.push_back(at::empty({x.size(0), x.size(1), front - cached, x.size(3), x.size(4)}, layout).zero_());
        }
        if (cached > 0) parts.push_back(cache);
        parts.push_back(x);
        input = at::cat(parts, 2);  // [b, Ci, t + 2pt, h, w]
    }
    // Spatial zero padding is symmetric, so the convolution can do it (saves a padded copy).
    return at::conv3d(input, weight, bias, stride, {0, pad_h < 0 ? padding[1] : pad_h, padding[2]});
}

at::Tensor CausalConv3d::forward_cached(const at::Tensor& x_in, Cache& cache) const {
    CacheSlot& s = cache.at(static_cast<size_t>(slot));
    // Split rows: the rows the kernel reaches come from the neighbours and stand in for the row padding;
    // the slot keeps those haloed frames, so the cached frames line up with the next chunk's input.
    const bool haloed = cache.rows != nullptr && padding[1] > 0;
    const at::Tensor x = haloed ? cache.rows->with_halo(x_in, padding[1]) : x_in;
    const int64_t t = x.size(2);
    const int64_t keep = std::min<int64_t>(2, t);
    at::Tensor next = x.narrow(2, t - keep, keep);
    if (keep < 2 && s.frames.defined()) {
        next = at::cat({s.frames.narrow(2, s.frames.size(2) - 1, 1), next}, 2);
    } else {
        next = next.clone(x.suggest_memory_format());  // own copy (in x's layout): never pin the whole input
    }
    at::Tensor y = forward(x, s.frames, haloed ? 0 : -1);
    s.frames = next;
    return y;
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

// ---- ResidualBlock ----------------------------------------------------------------------------------------

ResidualBlock::ResidualBlock(WeightReader& r, const std::string& p, int64_t ci, int64_t co_, SlotCounter& slots,
                             bool load_values)
    : co(co_) {
    norm0.load(r, p + ".residual.0.gamma", ci, false, load_values);
    conv2.load_cached_3x3x3(r, p + ".residual.2", ci, co, slots, load_values);
    norm3.load(r, p + ".residual.3.gamma", co, false, load_values);
    conv6.load_cached_3x3x3(r, p + ".residual.6", co, co, slots, load_values);
    has_shortcut = ci != co;
    if (has_shortcut) shortcut.load(r, p + ".shortcut", ci, co, {1, 1, 1}, load_values);
}

at::Tensor ResidualBlock::forward(const at::Tensor& x, Cache& cache) const {
    at::Tensor h = has_shortcut ? shortcut.forward(x) : x;  // [b, Co, t, h, w]
    at::Tensor y = norm0.forward(x);
    at::silu_(y);
    y = conv2.forward_cached(y, cache);  // the slot caches the post-activation conv input (§5.4)
    y = norm3.forward(y);
    at::silu_(y);  // Dropout(0) is the identity
    y = conv6.forward_cached(y, cache);
    return y.add_(h);
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
    return y + x;
}

// ---- Resample ---------------------------------------------------------------------------------------------

Resample::Resample(WeightReader& r, const std::string& p, int64_t c_, ResampleMode m, SlotCounter& slots,
                   bool load_values)
    : mode(m), c(c_) {
    const bool up = mode == ResampleMode::Upsample2d || mode == ResampleMode::Upsample3d;
    co = up ? c / 2 : c;
    WAN_CHECK(!up || c % 2 == 0, "VAE resample '%s': channel count %lld is odd", p.c_str(),
              static_cast<long long>(c));
    at::Tensor w = r.take(p + ".resample.1.weight", {co, c, 3, 3}, load_values);
    bias = r.take(p + ".resample.1.bias", {co}, load_values);
    if (w.defined()) weight = r.conv_layout(w.unsqueeze(2));  // [Co, C, 1, 3, 3]: the per-frame Conv2d as a conv3d
    if (mode == ResampleMode::Upsample3d) {
        time_conv.load(r, p + ".time_conv", c, 2 * c, {3, 1, 1}, load_values);
        time_conv.padding = {1, 0, 0};
        slot = slots.take();
    } else if (mode == ResampleMode::Downsample3d) {
        time_conv.load(r, p + ".time_conv", c, c, {3, 1, 1}, load_values);
        time_conv.stride = {2, 1, 1};
        slot = slots.take();
    }
}

namespace {

/// Nearest ×2 in h and w ("nearest-exact" at scale 2 is plain pixel replication) of a [b, C, T, S, h, w] view,
/// flattening (T, S) into the time axis: one copy for the frame interleave and the upsampling together, written
/// in the layout the convolution that follows reads (channels-last 3D when the source is channels-last).
at::Tensor interleave_upsample(const at::Tensor& v, bool channels_last) {
    const int64_t b = v.size(0), c = v.size(1), t = v.size(2), s = v.size(3), h = v.size(4), w = v.size(5);
    if (channels_last) {
        return v.permute({0, 2, 3, 4, 5, 1})                 // [b, T, S, h, w, C]
            .unsqueeze(4).unsqueeze(6)                       // [b, T, S, h, 1, w, 1, C]
            .expand({b, t, s, h, 2, w, 2, c})
            .reshape({b, t * s, 2 * h, 2 * w, c})            // one copy, C innermost
            .permute({0, 4, 1, 2, 3});                       // [b, C, T·S, 2h, 2w] channels-last 3D
    }
    return v.unsqueeze(5).unsqueeze(7)                 // [b, C, T, S, h, 1, w, 1]
        .expand({b, c, t, s, h, 2, w, 2})
        .reshape({b, c, t * s, 2 * h, 2 * w});         // [b, C, T·S, 2h, 2w]
}

bool is_channels_last(const at::Tensor& x) { return x.suggest_memory_format() == at::MemoryFormat::ChannelsLast3d; }

}  // namespace

at::Tensor Resample::upsample_conv(const at::Tensor& x, int64_t s, bool channels_last, Cache& cache) const {
    // Split rows: one halo row before upsampling gives two after it, of which the conv needs one per side;
    // cheaper to send than a row of the upsampled map, and the edge zeros stay zeros.
    const bool haloed = cache.rows != nullptr;
    const at::Tensor xh = haloed ? cache.rows->with_halo(x, 1) : x;  // [b, S·C, t, h(+2), w]
    const int64_t b = xh.size(0), t = xh.size(2), h = xh.size(3), w = xh.size(4);
    // out[:, :, S·τ+j] = x[:, j·C:(j+1)·C, τ]
    at::Tensor v = xh.reshape({b, s, c, t, h, w}).permute({0, 2, 3, 1, 4, 5});  // [b, C, t, S, h, w]
    at::Tensor up = interleave_upsample(v, channels_last);                   // [b, C, S·t, 2h, 2w]
    if (haloed) up = up.narrow(3, 1, up.size(3) - 2);                        // one halo row each side
    return at::conv3d(up, weight, bias, {1, 1, 1}, {0, haloed ? 0 : 1, 1});  // [b, C/2, S·t, 2h', 2w]
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
        const int64_t keep = std::min<int64_t>(2, t);
        at::Tensor next = x.narrow(2, t - keep, keep);
        if (keep < 2 && s.frames.defined()) {
            next = at::cat({s.frames.narrow(2, s.frames.size(2) - 1, 1), next}, 2);
        } else if (keep < 2) {  // after "Rep": the history starts from zeros
            next = at::cat({at::zeros_like(next), next}, 2);
        } else {
            next = next.clone(x.suggest_memory_format());
        }
        at::Tensor y = s.rep ? time_conv.forward(x) : time_conv.forward(x, s.frames);  // [b, 2C, t, h, w]
        s.frames = next;
        s.rep = false;
        return upsample_conv(y, 2, is_channels_last(x), cache);  // [b, C/2, 2t, 2h, 2w]
    }
    case ResampleMode::Downsample2d:
    case ResampleMode::Downsample3d: {
        // ZeroPad2d(left 0, right 1, top 0, bottom 1), then a 3×3 stride-2 conv per frame.
        at::Tensor padded = at::constant_pad_nd(x, {0, 1, 0, 1}, 0);                // [b, C, t, h+1, w+1]
        at::Tensor y = at::conv3d(padded, weight, bias, {1, 2, 2}, {0, 0, 0});       // [b, C, t, h/2, w/2]
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

at::Tensor run_head(const RMSNorm& norm, const CausalConv3d& conv, const at::Tensor& x, Cache& cache) {
    at::Tensor y = norm.forward(x);
    at::silu_(y);
    return conv.forward_cached(y, cache);
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
    conv1_.load_cached_3x3x3(r, "decoder.conv1", cfg.z_dim, dims[0], slots, true);
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
            in = out;
        }
        if (i + 1 != stages) {
            // temperal_upsample = reversed temperal_downsample
            const bool temporal = cfg.temporal_downsample.at(stages - 2 - i);
            const ResampleMode mode = temporal ? ResampleMode::Upsample3d : ResampleMode::Upsample2d;
            upsamples_.push_back(std::make_unique<Resample>(r, "decoder.upsamples." + std::to_string(index++), out,
                                                            mode, slots, true));
        }
    }
    head0_.load(r, "decoder.head.0.gamma", out, false, true);
    head2_.load_cached_3x3x3(r, "decoder.head.2", out, 3, slots, true);
    num_slots_ = slots.next;
}

at::Tensor Decoder::forward(const at::Tensor& x, Cache& cache, const Hook* hook) const {
    at::Tensor y = conv1_.forward_cached(x, cache);
    call_hook(hook, "decoder.conv1", y);
    y = middle0_->forward(y, cache);
    y = middle1_->forward(y, cache);
    y = middle2_->forward(y, cache);
    call_hook(hook, "decoder.middle", y);
    for (size_t i = 0; i < upsamples_.size(); ++i) {
        y = upsamples_[i]->forward(y, cache);
        call_hook(hook, "decoder.upsamples." + std::to_string(i), y);
    }
    y = run_head(head0_, head2_, y, cache);
    call_hook(hook, "decoder.head", y);
    return y;
}

}  // namespace wan::vae::detail
