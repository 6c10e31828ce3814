// StopSignals: Ctrl+C (and SIGTERM where asked) for the Qt programs that must stop cleanly (--batch / --prompt,
// --listen). The handler only notes the signal, as nothing else is safe in a signal handler; a timer on the Qt
// thread acts on the note.
#pragma once

#include <QTimer>

#include <functional>
#include <initializer_list>
#include <utility>
#include <vector>

class QObject;

namespace wan::app {

/// One at a time: the note is process-wide. The handlers it replaced come back when it is destroyed, so put it
/// in a scope that ends before a slow shutdown, after which a signal acts as it did before.
class StopSignals {
public:
    /// What a second signal does: caught like the first (a server stopping), or the default action, so that a
    /// second Ctrl+C ends a program at once while the first still waits for its running job to cancel.
    enum class Second { Caught = 1, Kills = 2 };

    /// Handles `signalNumbers`; the first time one has arrived (checked every 100 ms) calls `onStop` in `context`'s
    /// thread, once.
    StopSignals(std::initializer_list<int> signalNumbers, Second second, QObject* context,
                std::function<void()> onStop);
    ~StopSignals();
    StopSignals(const StopSignals&) = delete;
    StopSignals& operator=(const StopSignals&) = delete;

    /// Whether a signal has arrived (for checks between the timer's ticks, e.g. before each job).
    static bool raised();

private:
    std::vector<std::pair<int, void (*)(int)>> previous_;
    QTimer poll_;
};

}  // namespace wan::app
