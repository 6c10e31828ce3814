// WindowFixture: the window as runGui (app/gui_entry.cpp) builds it, for the tests that drive it: a MainWindow over
// an EngineSession on the test's backend (the fake one, or the real engine), with the test's Settings, shown,
// never asking before it closes.
#pragma once

#include "cli/options.h"
#include "session/engine_backend.h"
#include "session/engine_session.h"
#include "settings/settings.h"
#include "ui/main_window.h"

#include <QPushButton>
#include <QTemporaryDir>
#include <QTest>

#include <memory>

namespace wan::app::test {

/// Set `options` (its output folder is `dir` unless the test says otherwise), then open(). The members are
/// declared in the order they must outlive each other, so teardown is the reverse: the window before the session
/// it points to (a session destroyed first leaves the window's slots reading a dead object), the folder last.
/// A derived fixture whose own members the window uses (a launcher) calls close() in its destructor.
class WindowFixture {
public:
    WindowFixture() { options.engine.output_dir = dir.path().toStdString(); }
    ~WindowFixture() { close(); }
    WindowFixture(const WindowFixture&) = delete;
    WindowFixture& operator=(const WindowFixture&) = delete;

    /// Builds the session on `backend` and the window over it, and shows it; starts the engine unless `startNow`
    /// is false (a test that wants to see the window before the engine starts). `settings`: default, the
    /// QSettings of the process (a TemporarySettingsTest redirects them).
    void open(std::unique_ptr<EngineBackend> backend, std::unique_ptr<Settings> settings = nullptr,
              bool startNow = true) {
        this->settings = settings ? std::move(settings) : std::make_unique<Settings>();
        session = std::make_unique<EngineSession>(std::move(backend));
        window = std::make_unique<MainWindow>(session.get(), this->settings.get(), options);
        window->setConfirmOnClose(false);
        window->show();
        if (startNow) session->start();
    }

    /// Ends the window, then the session (the engine thread), then the settings.
    void close() {
        window.reset();
        session.reset();
        settings.reset();
    }

    /// Whether Generate became enabled (the engine is ready) within `timeoutMs`.
    bool waitReady(int timeoutMs = 5000) {
        return QTest::qWaitFor([&] { return window->generateButton()->isEnabled(); }, timeoutMs);
    }

    QTemporaryDir dir;
    AppOptions options;
    std::unique_ptr<Settings> settings;
    std::unique_ptr<EngineSession> session;
    std::unique_ptr<MainWindow> window;
};

}  // namespace wan::app::test
