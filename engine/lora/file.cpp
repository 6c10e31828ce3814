// Reading a LoRA file into per-parameter deltas, and turning one delta into an f32 tensor.
#include "lora/lora.h"

#include "core/core.h"
#include "io/io.h"

#include <ATen/ATen.h>
#include <c10/util/accumulate.h>

#include <algorithm>
#include <map>

namespace wan::lora {

namespace {

std::string shape_str(at::IntArrayRef s) { return c10::str(s); }

std::vector<int64_t> without_ones(at::IntArrayRef s) {
    std::vector<int64_t> out;
    for (int64_t v : s)
        if (v != 1) out.push_back(v);
    return out;
}

// The keys of one target parameter, collected before they are checked as a whole.
struct Collected {
    std::string down_key, up_key, alpha_key, full_key;
    at::Tensor down, up, alpha, full;
};

void put(at::Tensor& slot, std::string& slot_key, const at::Tensor& t, const std::string& key,
         const std::string& file) {
    WAN_CHECK(!slot.defined(), "LoRA file '%s': keys '%s' and '%s' both set the same part of one module",
              file.c_str(), slot_key.c_str(), key.c_str());
    slot = t;
    slot_key = key;
}

ParameterDelta finish(const std::string& target, const Collected& c, const std::string& file) {
    ParameterDelta d;
    d.target = target;
    if (c.down.defined() != c.up.defined()) {
        const std::string& have = c.down.defined() ? c.down_key : c.up_key;
        WAN_THROW("LoRA file '%s': key '%s' has no matching %s", file.c_str(), have.c_str(),
                  c.down.defined() ? "lora_up / lora_B" : "lora_down / lora_A");
    }
    WAN_CHECK(!c.alpha.defined() || c.down.defined(), "LoRA file '%s': key '%s' is an alpha without lora_down/lora_up",
              file.c_str(), c.alpha_key.c_str());
    if (c.down.defined()) {
        WAN_CHECK(c.down.dim() >= 2 && c.up.dim() >= 2 && c.down.size(0) > 0,
                  "LoRA file '%s': key '%s' has shape %s and its up key '%s' shape %s; expected down [rank, in, ...] "
                  "and up [out, rank, ...]",
                  file.c_str(), c.down_key.c_str(), shape_str(c.down.sizes()).c_str(), c.up_key.c_str(),
                  shape_str(c.up.sizes()).c_str());
        const int64_t rank = c.down.size(0);
        d.down = c.down;
        d.up = c.up;
        d.key = c.down_key;
        if (c.alpha.defined()) {
            WAN_CHECK(c.alpha.numel() == 1, "LoRA file '%s': alpha '%s' has shape %s, expected a scalar", file.c_str(),
                      c.alpha_key.c_str(), shape_str(c.alpha.sizes()).c_str());
            d.scale = c.alpha.to(at::kDouble).item<double>() / static_cast<double>(rank);
        }
    }
    if (c.full.defined()) {
        d.full = c.full;
        d.full_key = c.full_key;
        if (d.key.empty()) d.key = c.full_key;
    }
    return d;
}

}  // namespace

LoraFile LoraFile::read(const std::string& path, const KeyMapper& mapper) {
    io::TensorStore store = io::TensorStore::open_safetensors(path);
    LoraFile f;
    f.path_ = path;
    std::map<std::string, Collected> by_target;
    std::vector<std::string> order;  // targets in file order
    for (const std::string& key : store.names()) {
        const MappedKey m = mapper.map(key, path);
        if (m.image_to_video) {
            ++f.skipped_image_keys_;
            continue;
        }
        if (f.style_.empty()) f.style_ = m.style;
        const at::Tensor t = store.get(key);
        WAN_CHECK(at::isFloatingType(t.scalar_type()), "LoRA file '%s': key '%s' holds %s values, expected floating point",
                  path.c_str(), key.c_str(), c10::toString(t.scalar_type()));
        auto [it, fresh] = by_target.try_emplace(m.target);
        if (fresh) order.push_back(m.target);
        Collected& c = it->second;
        switch (m.part) {
            case KeyPart::Down: put(c.down, c.down_key, t, key, path); break;
            case KeyPart::Up: put(c.up, c.up_key, t, key, path); break;
            case KeyPart::Alpha: put(c.alpha, c.alpha_key, t, key, path); break;
            default: put(c.full, c.full_key, t, key, path); break;
        }
    }
    for (const auto& target : order) f.deltas_.push_back(finish(target, by_target.at(target), path));
    if (f.skipped_image_keys_ > 0)
        WAN_LOG_INFO("LoRA '%s': skipped %d image-to-video key(s) (k_img, v_img, norm_k_img, img_emb) on this "
                     "text-to-video model",
                     path.c_str(), f.skipped_image_keys_);
    if (f.style_.empty()) f.style_ = "none";
    return f;
}

void check_delta_shape(const ParameterDelta& d, at::IntArrayRef target_shape, const std::string& file) {
    const int64_t target_rows = target_shape.empty() ? 1 : target_shape[0];
    int64_t target_numel = 1;
    for (int64_t s : target_shape) target_numel *= s;
    if (d.down.defined()) {
        const int64_t rank = d.down.size(0), in = d.down.numel() / rank;
        const int64_t out = d.up.size(0), up_rank = d.up.numel() / std::max<int64_t>(out, 1);
        WAN_CHECK(up_rank == rank,
                  "LoRA file '%s': key '%s' (lora_down, shape %s) does not fit its lora_up of shape %s (rank %lld vs %lld)",
                  file.c_str(), d.key.c_str(), shape_str(d.down.sizes()).c_str(), shape_str(d.up.sizes()).c_str(),
                  static_cast<long long>(rank), static_cast<long long>(up_rank));
        WAN_CHECK(out == target_rows && out * in == target_numel,
                  "LoRA file '%s': key '%s' gives a delta of shape [%lld, %lld] (up %s @ down %s) but the model's '%s' "
                  "has shape %s",
                  file.c_str(), d.key.c_str(), static_cast<long long>(out), static_cast<long long>(in),
                  shape_str(d.up.sizes()).c_str(), shape_str(d.down.sizes()).c_str(), d.target.c_str(),
                  shape_str(target_shape).c_str());
    }
    if (d.full.defined()) {
        // [6, D] for a [1, 6, D] modulation is the same delta; anything else is a mismatch.
        WAN_CHECK(without_ones(d.full.sizes()) == without_ones(target_shape),
                  "LoRA file '%s': key '%s' has shape %s but the model's '%s' has shape %s", file.c_str(),
                  d.full_key.c_str(), shape_str(d.full.sizes()).c_str(), d.target.c_str(),
                  shape_str(target_shape).c_str());
    }
}

at::Tensor delta_part(const ParameterDelta& d, at::IntArrayRef target_shape, int64_t offset, int64_t count,
                      c10::Device device, const std::string& file, double strength) {
    check_delta_shape(d, target_shape, file);
    const auto f32 = at::TensorOptions().device(device).dtype(at::kFloat);
    if (count == 0) return at::empty({0}, f32);
    at::Tensor delta;
    if (d.down.defined()) {
        // Only the rows of up @ down that hold elements [offset, offset + count) of the flattened product.
        const at::Tensor down = d.down.flatten(1).to(f32);  // [rank, in·k]
        const int64_t in = down.size(1), row0 = offset / in, row1 = (offset + count + in - 1) / in;
        const at::Tensor up = d.up.flatten(1).narrow(0, row0, row1 - row0).to(f32);  // [rows, rank]
        delta = at::mm(up, down).mul_(strength * d.scale).view({-1}).narrow(0, offset - row0 * in, count);
    }
    if (d.full.defined()) {
        at::Tensor full = d.full.reshape({-1}).narrow(0, offset, count).to(device, at::kFloat, /*non_blocking=*/false,
                                                                           /*copy=*/true);
        full.mul_(strength);
        delta = delta.defined() ? delta.add_(full) : full;
    }
    WAN_CHECK(delta.defined(), "LoRA file '%s': parameter '%s' has no delta", file.c_str(), d.target.c_str());
    return delta;
}

at::Tensor delta_tensor(const ParameterDelta& d, at::IntArrayRef target_shape, c10::Device device,
                        const std::string& file, double strength) {
    return delta_part(d, target_shape, 0, c10::multiply_integers(target_shape), device, file, strength)
        .reshape(target_shape);
}

}  // namespace wan::lora
