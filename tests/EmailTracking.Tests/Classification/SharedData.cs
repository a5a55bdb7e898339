namespace EmailTracking.Tests.Classification;

/// <summary>
/// Locates the third-party test data in <c>shared/data</c>, which lives next to the project checkout
/// (<c>../shared/data</c> from the repository root) and is never copied into the repository.
/// </summary>
public static class SharedData
{
    private static readonly Lazy<string> Root = new(FindRoot);

    /// <summary>Full path of <c>shared/data/&lt;parts…&gt;</c>, e.g. <c>SharedData.Path("useragents", "ua-labelled.tsv")</c>.</summary>
    public static string Path(params string[] parts)
        => System.IO.Path.Combine([Root.Value, .. parts]);

    private static string FindRoot()
    {
        // Walk up from the test binaries (…/tests/EmailTracking.Tests/bin/Debug/net10.0) until a folder has
        // shared/data beside it (../shared/data) or inside it (shared/data).
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var sibling = System.IO.Path.GetFullPath(System.IO.Path.Combine(dir.FullName, "..", "shared", "data"));
            if (Directory.Exists(sibling))
                return sibling;
            var inside = System.IO.Path.Combine(dir.FullName, "shared", "data");
            if (Directory.Exists(inside))
                return inside;
        }
        throw new DirectoryNotFoundException(
            $"No shared/data folder found above {AppContext.BaseDirectory}; the test data is expected at ../shared/data next to the repository.");
    }
}
