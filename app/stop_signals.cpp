#include "stop_signals.h"

#include <QObject>

#include <csignal>

namespace wan::app {

namespace {
volatile std::sig_atomic_t g_raised = 0;
volatile std::sig_atomic_t g_second_kills = 0;

extern "C" void onStopSignal(int signal) {
    g_raised = 1;
    if (g_second_kills) std::signal(signal, SIG_DFL);
}
}  // namespace

StopSignals::StopSignals(std::initializer_list<int> signalNumbers, Second second, QObject* context,
                         std::function<void()> onStop) {
    g_raised = 0;
    g_second_kills = second == Second::Kills ? 1 : 0;
    for (int s : signalNumbers) previous_.emplace_back(s, std::signal(s, onStopSignal));
    poll_.setInterval(100);
    QObject::connect(&poll_, &QTimer::timeout, context, [this, onStop = std::move(onStop)] {
        if (!g_raised) return;
        poll_.stop();
        onStop();
    });
    poll_.start();
}

StopSignals::~StopSignals() {
    poll_.stop();
    for (const auto& [s, handler] : previous_) std::signal(s, handler == SIG_ERR ? SIG_DFL : handler);
}

bool StopSignals::raised() { return g_raised != 0; }

}  // namespace wan::app
