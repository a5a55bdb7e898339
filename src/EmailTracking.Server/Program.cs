using EmailTracking.Server;
using EmailTracking.Server.Content;

// The server starts itself this way to check an uploaded PDF in a process of its own (PdfInspector): a file that
// crashes the PDF reader then ends that process, not the server.
if (args is [PdfInspector.ChildCommand, var pdf]) return PdfInspector.RunChild(pdf);

// Settings are read once, at start. Reloading them on change means watching the content root, and with it data/
// beneath it: every write SQLite makes to its database and log then wakes the watcher, thousands of times a second
// under load, for nothing (seen in a profile of bench/pixel). Restart the server to apply new settings.
var builder = WebApplication.CreateBuilder([.. args, "--hostBuilder:reloadConfigOnChange=false"]);
builder.AddEmailTrackingServer();
var app = builder.Build();
await app.UseEmailTrackingAsync();
app.Run();
return 0;

public partial class Program;
