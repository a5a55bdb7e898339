using EmailTracking.Server;

// Settings are read once, at start. Reloading them on change means watching the content root, and with it data/
// beneath it: every write SQLite makes to its database and log then wakes the watcher, thousands of times a second
// under load, for nothing (seen in a profile of bench/pixel). Restart the server to apply new settings.
var builder = WebApplication.CreateBuilder([.. args, "--hostBuilder:reloadConfigOnChange=false"]);
builder.AddEmailTrackingServer();
var app = builder.Build();
await app.UseEmailTrackingAsync();
app.Run();

public partial class Program;
