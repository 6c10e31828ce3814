// Icons from resources/resources.qrc. PNG renderings sit beside each SVG, so icons show even where the Qt
// SVG plugin is missing (rendered with rsvg-convert from the SVGs).
#pragma once

#include <QIcon>

namespace wan::app {

QIcon appIcon();
QIcon generateIcon();

}  // namespace wan::app
