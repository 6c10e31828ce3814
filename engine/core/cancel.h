// The one cancellation type of the engine. Thrown where a job stops because its cancel flag was seen
// (between denoising steps, between VAE frames); callers map it to JobStatus::Cancelled, not Failed.
#pragma once

#include "core/core.h"

#include <string>

namespace wan {

class Cancelled : public Error {
public:
    explicit Cancelled(std::string message = "cancelled") : Error(std::move(message)) {}
};

}  // namespace wan
