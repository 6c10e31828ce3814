// The foot of the dialogs that restart WanStudio with new arguments (GPUs, Connect to engine).
#pragma once

#include <QString>

class QDialog;
class QPushButton;
class QVBoxLayout;

namespace wan::app {

/// Appends to `layout` a word-wrapped `note` (what the restart does) and an Ok/Cancel box that accepts or
/// rejects `dialog`; the Ok button reads `okText` and is returned, for the dialog to enable as its input allows.
QPushButton* addRestartButtons(QDialog* dialog, QVBoxLayout* layout, const QString& okText, const QString& note);

}  // namespace wan::app
