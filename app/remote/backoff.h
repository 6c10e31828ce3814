// The delays between attempts to reach an engine that does not answer: short at first (a blip is bridged at
// once), doubling up to a cap (a server that is down for minutes is not hammered). Not thread-safe.
#pragma once

#include <algorithm>

namespace wan::app {

class Backoff {
public:
    Backoff(int firstMs, int capMs) : first_(firstMs), cap_(capMs), next_(firstMs) {}
    /// The delay before the next attempt; each call doubles the one after, up to the cap.
    int next() {
        const int delay = next_;
        next_ = std::min(cap_, next_ * 2);
        return delay;
    }
    /// After a success: the next failure starts from the first delay again.
    void reset() { next_ = first_; }

private:
    int first_, cap_, next_;
};

}  // namespace wan::app
