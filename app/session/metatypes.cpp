#include "session/metatypes.h"

namespace wan::app {

void registerMetaTypes() {
    static const bool registered = [] {
        qRegisterMetaType<wan::GenerationRequest>("wan::GenerationRequest");
        qRegisterMetaType<wan::ProgressInfo>("wan::ProgressInfo");
        qRegisterMetaType<wan::GenerationResult>("wan::GenerationResult");
        qRegisterMetaType<wan::EngineInfo>("wan::EngineInfo");
        qRegisterMetaType<wan::LoadProgress>("wan::LoadProgress");
        return true;
    }();
    (void)registered;
}

}  // namespace wan::app
