// File → Connect to engine…: the address of a `wanstudio --listen` engine and its token. On OK the window
// relaunches itself with --connect HOST:PORT (the token travels in WANSTUDIO_API_TOKEN, not on the command
// line), keeping the queue, as Engine → GPUs… does.
#pragma once

#include "launch/launcher.h"

#include <QDialog>
#include <QStringList>

class QLabel;
class QLineEdit;
class QPushButton;

namespace wan::app {

class ConnectDialog : public QDialog {
    Q_OBJECT
public:
    /// `executable` and `arguments`: this program and its arguments (engine options are replaced).
    ConnectDialog(const QString& executable, const QStringList& arguments, QWidget* parent = nullptr);

    /// Empty when `address` is HOST:PORT with a port 1–65535, else what is wrong.
    static QString addressProblem(const QString& address);
    /// `EXE ARGS --connect HOST:PORT`, with WANSTUDIO_API_TOKEN set when a token was given.
    LaunchCommand command() const;

    QLineEdit* addressEdit() const { return address_; }
    QLineEdit* tokenEdit() const { return token_; }

private:
    void update();

    QString executable_;
    QStringList arguments_;
    QLineEdit* address_ = nullptr;
    QLineEdit* token_ = nullptr;
    QLabel* error_ = nullptr;
    QPushButton* ok_ = nullptr;
};

}  // namespace wan::app
