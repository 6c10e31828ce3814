// progressAt(): a ProgressInfo as the engine reports it at one point of a job, for the tests of what the app
// makes of progress (the queue's text and fraction, the remote API's job table).
#pragma once

#include "core/core.h"

namespace wan::app::test {

/// `etaS` is the estimate for the whole job (< 0: unknown), as in ProgressInfo.
inline ProgressInfo progressAt(Stage stage, int step, int total, double elapsedS = 0, double etaS = -1) {
    ProgressInfo p;
    p.stage = stage;
    p.step = step;
    p.total = total;
    p.elapsed_s = elapsedS;
    p.eta_s = etaS;
    return p;
}

}  // namespace wan::app::test
