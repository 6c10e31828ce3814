// The decode's row split over ranks. Ref: Note [Decode across the ranks] in vae.cpp.
#include "vae/row_split.h"

#include "core/core.h"
#include "dist/dist.h"

#include <ATen/ATen.h>

#include <algorithm>

namespace wan::vae::detail {

RowSplit RowSplit::even(int64_t rows, int ranks) {
    WAN_CHECK(ranks >= 1 && ranks <= rows, "VAE row split: %d ranks for %lld latent rows (each rank needs a row)",
              ranks, static_cast<long long>(rows));
    RowSplit s;
    int64_t next = 0;
    for (int i = 0; i < ranks; ++i) {
        const int64_t n = rows / ranks + (i < rows % ranks ? 1 : 0);
        s.start.push_back(next);
        s.count.push_back(n);
        next += n;
    }
    return s;
}

CommRowExchange::CommRowExchange(dist::Communicator& comm, RowSplit split) : comm_(comm), split_(std::move(split)) {
    WAN_CHECK(static_cast<int>(split_.count.size()) == comm_.size(),
              "VAE row split: %zu parts for a group of %d ranks", split_.count.size(), comm_.size());
}

int64_t CommRowExchange::scale_of(const at::Tensor& x) const {
    const int64_t mine = split_.count[static_cast<size_t>(comm_.rank())];
    WAN_CHECK(x.dim() == 5 && x.size(3) % mine == 0,
              "VAE row split: a feature map of %lld rows on a rank owning %lld latent rows",
              static_cast<long long>(x.dim() == 5 ? x.size(3) : -1), static_cast<long long>(mine));
    return x.size(3) / mine;
}

at::Tensor CommRowExchange::with_halo(const at::Tensor& x, int64_t halo) {
    const int64_t h = x.size(3);
    WAN_CHECK(halo >= 1 && halo <= h, "VAE row split: %lld halo rows from a slab of %lld rows",
              static_cast<long long>(halo), static_cast<long long>(h));
    at::Tensor top = x.narrow(3, 0, halo).contiguous();         // → the rank above (its bottom halo)
    at::Tensor bottom = x.narrow(3, h - halo, halo).contiguous();  // → the rank below (its top halo)
    at::Tensor above = at::empty_like(bottom);
    at::Tensor below = at::empty_like(top);
    if (comm_.size() > 1) {
        // Ring shifts: the wrap-around pair (last rank → rank 0) is sent too and ignored, which keeps every
        // rank's message the same shape (what start_shift asks) at the cost of one row.
        auto down = comm_.start_shift(bottom, above, 1);  // from rank − 1
        auto up = comm_.start_shift(top, below, -1);      // from rank + 1
        down->wait();
        up->wait();
    }
    if (comm_.rank() == 0) above.zero_();               // the frame's top edge: zero padding
    if (comm_.rank() == comm_.size() - 1) below.zero_();  // the bottom edge
    // In x's layout (channels-last 3D on CUDA, VAEOptions::channels_last), which the convolution reads.
    const at::MemoryFormat format = x.suggest_memory_format();
    at::Tensor out = at::cat({above.contiguous(format), x, below.contiguous(format)}, 3);
    return out.is_contiguous(format) ? out : out.contiguous(format);
}

at::Tensor CommRowExchange::whole_frame(const at::Tensor& x) {
    if (comm_.size() == 1) return x;
    const int64_t scale = scale_of(x);
    const int64_t tallest = *std::max_element(split_.count.begin(), split_.count.end()) * scale;
    at::Tensor padded = x;
    if (x.size(3) < tallest) padded = at::constant_pad_nd(x, {0, 0, 0, tallest - x.size(3)}, 0);
    at::Tensor all = comm_.all_gather(padded.unsqueeze(0), 0);  // [P, b, C, t, tallest, w]
    std::vector<at::Tensor> parts;
    for (int i = 0; i < comm_.size(); ++i) {
        parts.push_back(all[i].narrow(3, 0, split_.count[static_cast<size_t>(i)] * scale));
    }
    return at::cat(parts, 3);
}

}  // namespace wan::vae::detail
