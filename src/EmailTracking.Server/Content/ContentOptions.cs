namespace EmailTracking.Server.Content;

public sealed class ContentOptions
{
    public const string Section = "Content";

    /// <summary>Where files are stored (content-addressed); relative paths are under the current directory.</summary>
    public string StorePath { get; set; } = "data/content";

    /// <summary>Largest upload accepted, in bytes (default 50 MB).</summary>
    public long MaxUploadBytes { get; set; } = 50L * 1024 * 1024;

    /// <summary>LibreOffice's program; found on PATH by default (Debian: libreoffice-writer-nogui, libreoffice-impress-nogui).</summary>
    public string SofficePath { get; set; } = "soffice";

    /// <summary>How long one Word or PowerPoint conversion may take before LibreOffice is killed.</summary>
    public TimeSpan ConversionTimeout { get; set; } = TimeSpan.FromSeconds(120);

    /// <summary>
    /// Whether LibreOffice runs without a network (in a network namespace of its own, through <see cref="UnsharePath"/>;
    /// needs unprivileged user namespaces, which containers may forbid). Auto: isolated when this works here, otherwise
    /// converted anyway with a warning in the log (external links are still removed and blocked). Required: refuse to
    /// convert when it does not work. Off: never.
    /// </summary>
    public NetworkIsolation ConversionNetworkIsolation { get; set; } = NetworkIsolation.Auto;

    /// <summary>util-linux's unshare, which starts LibreOffice without a network.</summary>
    public string UnsharePath { get; set; } = "unshare";

    /// <summary>Conversions run at once; more wait their turn (LibreOffice takes a core and some hundred MB each).</summary>
    public int MaxConcurrentConversions { get; set; } = 2;

    /// <summary>
    /// How long an upload waits for a conversion slot (<see cref="ConversionSlots"/>: checking a Word or PowerPoint
    /// package and converting it) before it is refused as the server being busy (503), nothing added.
    /// </summary>
    public TimeSpan ConversionQueueTimeout { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>
    /// Most memory one LibreOffice conversion may take, in MB of address space (0: no limit). A converter that needs
    /// more stops, and the upload is refused saying so, instead of a hostile or enormous file taking the machine's
    /// memory for up to <see cref="ConversionTimeout"/>. An ordinary document takes about 200 MB of memory and runs in
    /// 512 MB of address space; the default leaves room for large presentations with pictures.
    /// </summary>
    public int ConversionMemoryLimitMegabytes { get; set; } = 2048;

    /// <summary>Poppler's page renderer for thumbnails (Debian: poppler-utils). Without it documents have no thumbnails.</summary>
    public string PdftoppmPath { get; set; } = "pdftoppm";

    /// <summary>qpdf, which gives each page of the shown PDF only its own resources (Debian: qpdf).</summary>
    public string QpdfPath { get; set; } = "qpdf";

    /// <summary>How long checking a PDF, rendering its thumbnails or rewriting it may take before the tool is killed.</summary>
    public TimeSpan ThumbnailTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Thumbnail width in pixels. A thumbnail is at most three times as tall: of a longer page, the top is shown.</summary>
    public int ThumbnailWidth { get; set; } = 200;

    /// <summary>PDF tools (the PDF check, qpdf, pdftoppm) run at once across all uploads; more wait their turn.</summary>
    public int MaxConcurrentPdfTools { get; set; } = 2;

    /// <summary>
    /// Most memory one PDF tool may take, in MB (pdftoppm and qpdf: address space; the PDF check: .NET heap). A file
    /// that needs more fails that tool: no thumbnails, the PDF shown as uploaded, or (the check) refused as damaged.
    /// </summary>
    public int ToolMemoryLimitMegabytes { get; set; } = 1024;

    /// <summary>Pages that get a thumbnail (the first ones).</summary>
    public int MaxThumbnails { get; set; } = 200;

    /// <summary>Most bytes a Word or PowerPoint file (a zip) may unpack to: more is treated as a zip bomb.</summary>
    public long MaxUnpackedBytes { get; set; } = 512L * 1024 * 1024;

    /// <summary>Most entries in a Word or PowerPoint zip.</summary>
    public int MaxZipEntries { get; set; } = 10_000;

    /// <summary>Largest ratio of unpacked to packed size for one zip entry (real documents stay far below it).</summary>
    public int MaxCompressionRatio { get; set; } = 200;
}

public enum NetworkIsolation
{
    Auto,
    Required,
    Off,
}
