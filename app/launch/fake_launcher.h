// A Launcher that starts nothing: records what it was asked to start, and pretends programs exist (or not).
// For tests and for the dialog's dry-run mode.
#pragma once

#include "launch/launcher.h"

#include <QSet>
#include <QVector>

namespace wan::app {

class FakeLauncher : public Launcher {
public:
    QSet<QString> missing;        ///< programs findProgram() does not find
    QString failWith;             ///< when set, startDetached() fails with this error
    QVector<LaunchCommand> started;

    QString findProgram(const QString& program) const override {
        return missing.contains(program) ? QString() : program;
    }
    bool startDetached(const LaunchCommand& command, QString* error) override {
        if (!failWith.isEmpty()) {
            if (error) *error = failWith;
            return false;
        }
        started.push_back(command);
        return true;
    }
};

}  // namespace wan::app
