#include "ui/icons.h"

#include <QImageReader>

// The .qrc is compiled into the static library wan_app_core: register it explicitly, or the linker may drop it.
static void initWanResources() {
    static const bool done = [] {
        Q_INIT_RESOURCE(resources);
        return true;
    }();
    (void)done;
}

namespace wan::app {

namespace {
bool svgSupported() {
    initWanResources();
    static const bool supported = QImageReader::supportedImageFormats().contains("svg");
    return supported;
}
}  // namespace

QIcon appIcon() {
    QIcon icon;
    if (svgSupported()) icon.addFile(QStringLiteral(":/icons/wanstudio.svg"));
    for (int size : {32, 64, 128, 256})
        icon.addFile(QStringLiteral(":/icons/wanstudio-%1.png").arg(size), QSize(size, size));
    return icon;
}

QIcon generateIcon() {
    QIcon icon;
    if (svgSupported()) icon.addFile(QStringLiteral(":/icons/generate.svg"));
    icon.addFile(QStringLiteral(":/icons/generate-48.png"), QSize(48, 48));
    return icon;
}

}  // namespace wan::app
