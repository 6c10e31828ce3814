#include "ui/connect_dialog.h"

#include "launch/layout_proposal.h"
#include "ui/error_label.h"
#include "ui/restart_buttons.h"

#include <QFormLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QVBoxLayout>

namespace wan::app {

ConnectDialog::ConnectDialog(const QString& executable, const QStringList& arguments, QWidget* parent)
    : QDialog(parent), executable_(executable), arguments_(arguments) {
    setWindowTitle(tr("Connect to engine"));
    auto* form = new QFormLayout;
    address_ = new QLineEdit;
    address_->setObjectName(QStringLiteral("addressEdit"));
    address_->setPlaceholderText(QStringLiteral("gpu-server:8080"));
    form->addRow(tr("Engine (HOST:PORT):"), address_);
    token_ = new QLineEdit;
    token_->setObjectName(QStringLiteral("tokenEdit"));
    token_->setEchoMode(QLineEdit::Password);
    token_->setPlaceholderText(tr("the engine's --api-token (empty on loopback without one)"));
    form->addRow(tr("Token:"), token_);
    error_ = newErrorLabel(QStringLiteral("addressErrorLabel"));
    auto* top = new QVBoxLayout(this);
    top->addLayout(form);
    top->addWidget(error_);
    ok_ = addRestartButtons(this, top, tr("Restart connected"),
                            tr("WanStudio restarts as a window on that engine (started there with "
                               "wanstudio --listen); the queue is kept."));
    connect(address_, &QLineEdit::textChanged, this, [this] { update(); });
    update();
}

QString ConnectDialog::addressProblem(const QString& address) {
    const QString a = address.trimmed();
    const int colon = a.lastIndexOf(QLatin1Char(':'));
    if (a.isEmpty()) return tr("Enter the engine's address as HOST:PORT.");
    if (colon <= 0) return tr("'%1': expected HOST:PORT, such as gpu-server:8080").arg(a);
    bool ok = false;
    const int port = a.mid(colon + 1).toInt(&ok);
    if (!ok || port < 1 || port > 65535) return tr("'%1': the port must be a number from 1 to 65535").arg(a);
    return {};
}

LaunchCommand ConnectDialog::command() const {
    std::vector<std::string> args;
    for (const QString& a : arguments_) args.push_back(a.toStdString());
    LaunchCommand c;
    c.program = executable_;
    for (const std::string& a : stripLayoutArgs(args)) c.arguments << QString::fromStdString(a);
    c.arguments << QStringLiteral("--connect") << address_->text().trimmed();
    if (!token_->text().isEmpty()) c.extraEnvironment.insert(QStringLiteral("WANSTUDIO_API_TOKEN"), token_->text());
    return c;
}

void ConnectDialog::update() {
    const QString problem = addressProblem(address_->text());
    error_->setText(address_->text().isEmpty() ? QString() : problem);
    ok_->setEnabled(problem.isEmpty());
}

}  // namespace wan::app
