using Xunit.Abstractions;
using Xunit.Sdk;

[assembly: TestCollectionOrderer("EmailTracking.Tests.Infrastructure.LongestFirstOrderer", "EmailTracking.Tests")]
// Three collections at once on two cores: the real server collection holds one slot for most of the run, much of it
// waiting on a browser or a child process, and the rest of the suite shares the other two.
[assembly: CollectionBehavior(MaxParallelThreads = 3)]

namespace EmailTracking.Tests.Infrastructure;

/// <summary>
/// Tests that start server processes (load, SIGKILL, browsers) run one after another: on two cores, a load test beside
/// a browser test would make the browser test's waits a matter of luck.
/// </summary>
[CollectionDefinition(Name)]
public sealed class RealServerCollection
{
    public const string Name = "real server processes";
}

/// <summary>
/// Tests that run `et` as its own process, one after another: each run starts .NET afresh (a second and more of a
/// core), and a dozen at once would starve the browser tests beside them. They load no server, so they run beside the
/// real server collection rather than in it.
/// </summary>
[CollectionDefinition(Name)]
public sealed class CommandLineCollection
{
    public const string Name = "command-line processes";
}

/// <summary>
/// Starts the collections that run longest first. The real server collection alone lasts most of the run: started late
/// (where the default order, by a hash of its id, put it) it ran on alone for the last half of the run, a core idle.
/// </summary>
public sealed class LongestFirstOrderer : ITestCollectionOrderer
{
    static readonly string[] First = [RealServerCollection.Name, MailCollection.Name, CommandLineCollection.Name];

    public IEnumerable<ITestCollection> OrderTestCollections(IEnumerable<ITestCollection> testCollections)
    {
        var all = testCollections.ToList();
        return all
            .Select((collection, index) => (collection, index, rank: Array.IndexOf(First, collection.DisplayName) is var r and >= 0 ? r : First.Length))
            .OrderBy(c => c.rank).ThenBy(c => c.index)
            .Select(c => c.collection);
    }
}
