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
