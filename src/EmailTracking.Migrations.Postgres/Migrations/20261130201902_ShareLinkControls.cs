using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace EmailTracking.Migrations.Postgres.Migrations
{
    /// <summary>
    /// Share-link controls: an expiry, turning a link off, a per-link download choice and asking the reader for their
    /// address (and a mailed code to prove it); the address a reader gave goes with their visits and events. Columns are
    /// added only (nullable, or with a default), so no table is rebuilt.
    /// </summary>
    public partial class ShareLinkControls : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                name: "ReaderEmail",
                table: "Events",
                type: "character varying(320)",
                maxLength: 320,
                nullable: true);

            migrationBuilder.AddColumn<bool>(
                name: "ReaderVerified",
                table: "Events",
                type: "boolean",
                nullable: false,
                defaultValue: false);

            migrationBuilder.AddColumn<string>(
                name: "ReaderEmail",
                table: "DocumentVisits",
                type: "character varying(320)",
                maxLength: 320,
                nullable: true);

            migrationBuilder.AddColumn<bool>(
                name: "ReaderVerified",
                table: "DocumentVisits",
                type: "boolean",
                nullable: false,
                defaultValue: false);

            migrationBuilder.AddColumn<bool>(
                name: "AllowDownload",
                table: "ContentLinks",
                type: "boolean",
                nullable: true);

            migrationBuilder.AddColumn<DateTimeOffset>(
                name: "DisabledAt",
                table: "ContentLinks",
                type: "timestamp with time zone",
                nullable: true);

            migrationBuilder.AddColumn<int>(
                name: "EmailGate",
                table: "ContentLinks",
                type: "integer",
                nullable: false,
                defaultValue: 0);

            migrationBuilder.AddColumn<DateTimeOffset>(
                name: "ExpiresAt",
                table: "ContentLinks",
                type: "timestamp with time zone",
                nullable: true);

            migrationBuilder.CreateTable(
                name: "ShareLinkCodes",
                columns: table => new
                {
                    Id = table.Column<Guid>(type: "uuid", nullable: false),
                    ContentLinkId = table.Column<Guid>(type: "uuid", nullable: false),
                    Visitor = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false),
                    Email = table.Column<string>(type: "character varying(320)", maxLength: 320, nullable: false),
                    CodeHash = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false),
                    SentAt = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    ExpiresAt = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    CodesSent = table.Column<int>(type: "integer", nullable: false),
                    WindowStartedAt = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    FailedAttempts = table.Column<int>(type: "integer", nullable: false),
                    LockedUntil = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_ShareLinkCodes", x => x.Id);
                    table.ForeignKey(
                        name: "FK_ShareLinkCodes_ContentLinks_ContentLinkId",
                        column: x => x.ContentLinkId,
                        principalTable: "ContentLinks",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateIndex(
                name: "IX_ShareLinkCodes_ContentLinkId_Visitor_Email",
                table: "ShareLinkCodes",
                columns: new[] { "ContentLinkId", "Visitor", "Email" },
                unique: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "ShareLinkCodes");

            migrationBuilder.DropColumn(
                name: "ReaderEmail",
                table: "Events");

            migrationBuilder.DropColumn(
                name: "ReaderVerified",
                table: "Events");

            migrationBuilder.DropColumn(
                name: "ReaderEmail",
                table: "DocumentVisits");

            migrationBuilder.DropColumn(
                name: "ReaderVerified",
                table: "DocumentVisits");

            migrationBuilder.DropColumn(
                name: "AllowDownload",
                table: "ContentLinks");

            migrationBuilder.DropColumn(
                name: "DisabledAt",
                table: "ContentLinks");

            migrationBuilder.DropColumn(
                name: "EmailGate",
                table: "ContentLinks");

            migrationBuilder.DropColumn(
                name: "ExpiresAt",
                table: "ContentLinks");
        }
    }
}
