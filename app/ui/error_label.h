// The look of an error message in the window's widgets, defined once.
#pragma once

#include <QString>

class QLabel;
class QWidget;

namespace wan::app {

/// A red, word-wrapped label whose text can be selected (to copy into a report), named `objectName` for
/// tests; visible, and empty until the caller sets a message.
QLabel* newErrorLabel(const QString& objectName, QWidget* parent = nullptr);

}  // namespace wan::app
