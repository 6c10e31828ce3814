#include "ui/restart_buttons.h"

#include <QDialog>
#include <QDialogButtonBox>
#include <QLabel>
#include <QPushButton>
#include <QVBoxLayout>

namespace wan::app {

QPushButton* addRestartButtons(QDialog* dialog, QVBoxLayout* layout, const QString& okText, const QString& note) {
    auto* noteLabel = new QLabel(note);
    noteLabel->setWordWrap(true);
    layout->addWidget(noteLabel);
    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel);
    QPushButton* ok = buttons->button(QDialogButtonBox::Ok);
    ok->setText(okText);
    layout->addWidget(buttons);
    QObject::connect(buttons, &QDialogButtonBox::accepted, dialog, &QDialog::accept);
    QObject::connect(buttons, &QDialogButtonBox::rejected, dialog, &QDialog::reject);
    return ok;
}

}  // namespace wan::app
