using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace EmailTracking.Migrations.Sqlite.Migrations
{
    /// <inheritdoc />
    public partial class Content : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<byte[]>(
                name: "ContentId",
                table: "Events",
                type: "BLOB",
                nullable: true);

            migrationBuilder.AddColumn<int>(
                name: "Page",
                table: "Events",
                type: "INTEGER",
                nullable: true);

            migrationBuilder.CreateTable(
                name: "Contents",
                columns: table => new
                {
                    Id = table.Column<byte[]>(type: "BLOB", nullable: false),
                    TeamId = table.Column<byte[]>(type: "BLOB", nullable: false),
                    UserId = table.Column<byte[]>(type: "BLOB", nullable: false),
                    Name = table.Column<string>(type: "TEXT", maxLength: 255, nullable: false),
                    FileType = table.Column<int>(type: "INTEGER", nullable: false),
                    OriginalSha256 = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    OriginalSize = table.Column<long>(type: "INTEGER", nullable: false),
                    PdfSha256 = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    PdfSize = table.Column<long>(type: "INTEGER", nullable: false),
                    PageCount = table.Column<int>(type: "INTEGER", nullable: false),
                    ThumbnailCount = table.Column<int>(type: "INTEGER", nullable: false),
                    AllowDownload = table.Column<bool>(type: "INTEGER", nullable: false),
                    CreatedAt = table.Column<long>(type: "INTEGER", nullable: false),
                    DeletedAt = table.Column<long>(type: "INTEGER", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_Contents", x => x.Id);
                });

            migrationBuilder.CreateTable(
                name: "DocumentVisits",
                columns: table => new
                {
                    Id = table.Column<byte[]>(type: "BLOB", nullable: false),
                    ContentLinkId = table.Column<byte[]>(type: "BLOB", nullable: false),
                    ContentId = table.Column<byte[]>(type: "BLOB", nullable: false),
                    TeamId = table.Column<byte[]>(type: "BLOB", nullable: false),
                    UserId = table.Column<byte[]>(type: "BLOB", nullable: false),
                    TrackedMessageId = table.Column<byte[]>(type: "BLOB", nullable: true),
                    RecipientId = table.Column<byte[]>(type: "BLOB", nullable: true),
                    StartedAt = table.Column<long>(type: "INTEGER", nullable: false),
                    LastSeenAt = table.Column<long>(type: "INTEGER", nullable: false),
                    Ip = table.Column<string>(type: "TEXT", maxLength: 64, nullable: true),
                    UserAgent = table.Column<string>(type: "TEXT", maxLength: 1024, nullable: true),
                    Verdict = table.Column<int>(type: "INTEGER", nullable: false),
                    Reason = table.Column<string>(type: "TEXT", maxLength: 300, nullable: false),
                    ActiveMs = table.Column<long>(type: "INTEGER", nullable: false),
                    MaxPage = table.Column<int>(type: "INTEGER", nullable: false),
                    Downloads = table.Column<int>(type: "INTEGER", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_DocumentVisits", x => x.Id);
                });

            migrationBuilder.CreateTable(
                name: "ContentLinks",
                columns: table => new
                {
                    Id = table.Column<byte[]>(type: "BLOB", nullable: false),
                    Token = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    ContentId = table.Column<byte[]>(type: "BLOB", nullable: false),
                    TeamId = table.Column<byte[]>(type: "BLOB", nullable: false),
                    UserId = table.Column<byte[]>(type: "BLOB", nullable: false),
                    TrackedMessageId = table.Column<byte[]>(type: "BLOB", nullable: true),
                    CopyId = table.Column<byte[]>(type: "BLOB", nullable: true),
                    RecipientId = table.Column<byte[]>(type: "BLOB", nullable: true),
                    CreatedAt = table.Column<long>(type: "INTEGER", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_ContentLinks", x => x.Id);
                    table.ForeignKey(
                        name: "FK_ContentLinks_Contents_ContentId",
                        column: x => x.ContentId,
                        principalTable: "Contents",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "DocumentPageTimes",
                columns: table => new
                {
                    VisitId = table.Column<byte[]>(type: "BLOB", nullable: false),
                    Page = table.Column<int>(type: "INTEGER", nullable: false),
                    ActiveMs = table.Column<long>(type: "INTEGER", nullable: false),
                    Order = table.Column<int>(type: "INTEGER", nullable: false),
                    FirstSeenAt = table.Column<long>(type: "INTEGER", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_DocumentPageTimes", x => new { x.VisitId, x.Page });
                    table.ForeignKey(
                        name: "FK_DocumentPageTimes_DocumentVisits_VisitId",
                        column: x => x.VisitId,
                        principalTable: "DocumentVisits",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateIndex(
                name: "IX_ContentLinks_ContentId_CreatedAt",
                table: "ContentLinks",
                columns: new[] { "ContentId", "CreatedAt" });

            migrationBuilder.CreateIndex(
                name: "IX_ContentLinks_Token",
                table: "ContentLinks",
                column: "Token",
                unique: true);

            migrationBuilder.CreateIndex(
                name: "IX_ContentLinks_TrackedMessageId",
                table: "ContentLinks",
                column: "TrackedMessageId",
                filter: "\"TrackedMessageId\" IS NOT NULL");

            migrationBuilder.CreateIndex(
                name: "IX_Contents_TeamId_CreatedAt",
                table: "Contents",
                columns: new[] { "TeamId", "CreatedAt" });

            migrationBuilder.CreateIndex(
                name: "IX_Contents_UserId_CreatedAt",
                table: "Contents",
                columns: new[] { "UserId", "CreatedAt" });

            migrationBuilder.CreateIndex(
                name: "IX_DocumentVisits_ContentId_StartedAt",
                table: "DocumentVisits",
                columns: new[] { "ContentId", "StartedAt" });

            migrationBuilder.CreateIndex(
                name: "IX_DocumentVisits_ContentLinkId_StartedAt",
                table: "DocumentVisits",
                columns: new[] { "ContentLinkId", "StartedAt" });

            migrationBuilder.CreateIndex(
                name: "IX_DocumentVisits_TrackedMessageId",
                table: "DocumentVisits",
                column: "TrackedMessageId",
                filter: "\"TrackedMessageId\" IS NOT NULL");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "ContentLinks");

            migrationBuilder.DropTable(
                name: "DocumentPageTimes");

            migrationBuilder.DropTable(
                name: "Contents");

            migrationBuilder.DropTable(
                name: "DocumentVisits");

            migrationBuilder.DropColumn(
                name: "ContentId",
                table: "Events");

            migrationBuilder.DropColumn(
                name: "Page",
                table: "Events");
        }
    }
}
