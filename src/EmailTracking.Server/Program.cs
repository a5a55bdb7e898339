using EmailTracking.Server;

var builder = WebApplication.CreateBuilder(args);
builder.AddEmailTrackingServer();
var app = builder.Build();
await app.UseEmailTrackingAsync();
app.Run();

public partial class Program;
