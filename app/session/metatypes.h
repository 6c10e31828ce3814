// The engine types that cross the GUI ↔ engine thread boundary in queued signals.
#pragma once

#include "core/core.h"
#include "core/load_progress.h"

#include <QMetaType>

Q_DECLARE_METATYPE(wan::GenerationRequest)
Q_DECLARE_METATYPE(wan::ProgressInfo)
Q_DECLARE_METATYPE(wan::GenerationResult)
Q_DECLARE_METATYPE(wan::EngineInfo)
Q_DECLARE_METATYPE(wan::LoadProgress)

namespace wan::app {

/// qRegisterMetaType for every type above. Idempotent and thread-safe; EngineSession's constructor calls it,
/// so callers need not.
void registerMetaTypes();

}  // namespace wan::app
