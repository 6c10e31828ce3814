#include "ui/error_label.h"

#include <QLabel>

namespace wan::app {

QLabel* newErrorLabel(const QString& objectName, QWidget* parent) {
    auto* label = new QLabel(parent);
    label->setObjectName(objectName);
    label->setWordWrap(true);
    label->setTextInteractionFlags(Qt::TextSelectableByMouse);
    label->setStyleSheet(QStringLiteral("color: #c0392b;"));
    return label;
}

}  // namespace wan::app
