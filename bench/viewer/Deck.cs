using System.Diagnostics;
using System.IO.Compression;
using System.Security;
using System.Text;

namespace EmailTracking.Bench.Viewer;

/// <summary>
/// A generated proposal deck: a flat OpenDocument text (.fodt) of <c>pages</c> A4 pages, each with a heading, a
/// photo-like picture and a page of dense justified text, converted to PDF by LibreOffice as the server itself would
/// convert a Word file (its own profile, headless). Seeded, so every run makes the same file.
/// </summary>
static class Deck
{
    static readonly string[] Words =
    [
        "proposal", "delivery", "phase", "budget", "milestone", "stakeholder", "integration", "migration", "platform",
        "service", "customer", "contract", "renewal", "pricing", "licence", "support", "onboarding", "training",
        "security", "compliance", "audit", "reporting", "dashboard", "pipeline", "forecast", "quarter", "region",
        "team", "engineer", "architect", "review", "scope", "risk", "mitigation", "timeline", "resource", "capacity",
        "throughput", "latency", "availability", "uptime", "agreement", "schedule", "invoice", "payment", "terms",
        "the", "the", "the", "of", "of", "and", "and", "to", "to", "in", "in", "for", "with", "on", "by", "we", "our",
        "your", "will", "is", "are", "be", "this", "that", "each", "all", "within", "across", "between", "before",
        "after", "during", "against", "measured", "agreed", "planned", "delivered", "reviewed", "approved", "shared",
        "weekly", "monthly", "annual", "initial", "final", "dedicated", "shared", "secure", "reliable", "scalable",
    ];

    static readonly string[] Topics =
    [
        "Executive summary", "Objectives", "Current situation", "Proposed approach", "Architecture", "Delivery plan",
        "Team and roles", "Security and compliance", "Service levels", "Migration", "Training", "Support model",
        "Pricing", "Risks and mitigations", "Case study", "Timeline", "Governance", "Reporting", "Terms", "Next steps",
    ];

    /// <summary>Writes the .fodt and converts it; returns the PDF's path.</summary>
    public static async Task<string> MakePdfAsync(string dir, int pages, TimeSpan timeout)
    {
        var fodt = Path.Combine(dir, "proposal.fodt");
        await File.WriteAllTextAsync(fodt, Fodt(pages), new UTF8Encoding(false));
        var profile = Path.Combine(dir, "lo-profile");
        Directory.CreateDirectory(profile);
        var psi = new ProcessStartInfo("soffice",
        [
            "--headless", "--norestore", "--nolockcheck", $"-env:UserInstallation={new Uri(profile + "/").AbsoluteUri}",
            "--convert-to", "pdf", "--outdir", dir, fodt,
        ])
        { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = dir };
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("soffice did not start");
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try { await p.WaitForExitAsync(cts.Token); }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"LibreOffice did not convert the deck within {timeout.TotalSeconds:0} s");
        }
        var pdf = Path.Combine(dir, "proposal.pdf");
        if (p.ExitCode != 0 || !File.Exists(pdf))
            throw new InvalidOperationException($"LibreOffice failed ({p.ExitCode}): {await stdout} {await stderr}");
        File.Delete(fodt);
        return pdf;
    }

    static string Fodt(int pages)
    {
        var rng = new Random(2026);
        var body = new StringBuilder();
        for (var page = 1; page <= pages; page++)
        {
            var topic = Topics[(page - 1) % Topics.Length];
            body.Append($"<text:h text:style-name=\"{(page == 1 ? "H1" : "H1Break")}\" text:outline-level=\"1\">{page}. {topic}</text:h>");
            body.Append($"<text:p text:style-name=\"Lead\">{Esc(Sentence(rng, 18))}</text:p>");
            var png = Convert.ToBase64String(Picture(rng, 720, 380));
            body.Append("<text:p text:style-name=\"Figure\"><draw:frame draw:style-name=\"fr1\" draw:name=\"figure")
                .Append(page).Append("\" text:anchor-type=\"as-char\" svg:width=\"17cm\" svg:height=\"8.97cm\" draw:z-index=\"0\">")
                .Append("<draw:image><office:binary-data>").Append(png).Append("</office:binary-data></draw:image></draw:frame></text:p>");
            body.Append($"<text:p text:style-name=\"Caption\">Figure {page}: {Esc(Sentence(rng, 9))}</text:p>");
            for (var para = 0; para < 4; para++)
                body.Append($"<text:p text:style-name=\"Body\">{Esc(Paragraph(rng, 70))}</text:p>");
        }
        return $"""
            <?xml version="1.0" encoding="UTF-8"?>
            <office:document xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"
              xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"
              xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" xmlns:fo="urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0"
              xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0" xmlns:xlink="http://www.w3.org/1999/xlink"
              office:version="1.3" office:mimetype="application/vnd.oasis.opendocument.text">
             <office:font-face-decls>
              <style:font-face style:name="Liberation Serif" svg:font-family="'Liberation Serif'" style:font-family-generic="roman"/>
              <style:font-face style:name="Liberation Sans" svg:font-family="'Liberation Sans'" style:font-family-generic="swiss"/>
             </office:font-face-decls>
             <office:styles>
              <style:style style:name="Standard" style:family="paragraph">
               <style:text-properties style:font-name="Liberation Serif" fo:font-size="10pt" fo:language="en" fo:country="GB"/>
              </style:style>
             </office:styles>
             <office:automatic-styles>
              <style:style style:name="H1" style:family="paragraph" style:parent-style-name="Standard">
               <style:paragraph-properties fo:margin-bottom="0.3cm"/>
               <style:text-properties style:font-name="Liberation Sans" fo:font-size="20pt" fo:font-weight="bold" fo:color="#1f3b63"/>
              </style:style>
              <style:style style:name="H1Break" style:family="paragraph" style:parent-style-name="Standard">
               <style:paragraph-properties fo:margin-bottom="0.3cm" fo:break-before="page"/>
               <style:text-properties style:font-name="Liberation Sans" fo:font-size="20pt" fo:font-weight="bold" fo:color="#1f3b63"/>
              </style:style>
              <style:style style:name="Lead" style:family="paragraph" style:parent-style-name="Standard">
               <style:paragraph-properties fo:margin-bottom="0.25cm"/>
               <style:text-properties style:font-name="Liberation Sans" fo:font-size="12pt" fo:font-style="italic" fo:color="#444444"/>
              </style:style>
              <style:style style:name="Figure" style:family="paragraph" style:parent-style-name="Standard">
               <style:paragraph-properties fo:text-align="center"/>
              </style:style>
              <style:style style:name="Caption" style:family="paragraph" style:parent-style-name="Standard">
               <style:paragraph-properties fo:text-align="center" fo:margin-bottom="0.3cm"/>
               <style:text-properties style:font-name="Liberation Sans" fo:font-size="8pt" fo:color="#666666"/>
              </style:style>
              <style:style style:name="Body" style:family="paragraph" style:parent-style-name="Standard">
               <style:paragraph-properties fo:text-align="justify" fo:margin-bottom="0.18cm"/>
              </style:style>
              <style:style style:name="fr1" style:family="graphic">
               <style:graphic-properties style:wrap="none" style:vertical-pos="top" style:vertical-rel="baseline"/>
              </style:style>
              <style:page-layout style:name="pm1">
               <style:page-layout-properties fo:page-width="21cm" fo:page-height="29.7cm" fo:margin-top="1.8cm"
                 fo:margin-bottom="1.8cm" fo:margin-left="2cm" fo:margin-right="2cm"/>
              </style:page-layout>
             </office:automatic-styles>
             <office:master-styles><style:master-page style:name="Standard" style:page-layout-name="pm1"/></office:master-styles>
             <office:body><office:text>{body}</office:text></office:body>
            </office:document>
            """;
    }

    static string Esc(string s) => SecurityElement.Escape(s);

    static string Sentence(Random rng, int words)
    {
        var sb = new StringBuilder();
        for (var i = 0; i < words; i++)
        {
            var w = Words[rng.Next(Words.Length)];
            sb.Append(i == 0 ? char.ToUpperInvariant(w[0]) + w[1..] : w).Append(i == words - 1 ? "." : " ");
        }
        return sb.ToString();
    }

    static string Paragraph(Random rng, int words)
    {
        var sb = new StringBuilder();
        while (words > 0)
        {
            var n = Math.Min(words, 8 + rng.Next(12));
            sb.Append(Sentence(rng, n)).Append(' ');
            words -= n;
        }
        return sb.ToString().TrimEnd();
    }

    /// <summary>
    /// A photo-like RGB picture: smooth colour fields, a few soft shapes and sensor-like noise, so that it compresses
    /// like a photograph (LibreOffice re-encodes it as JPEG in the PDF) rather than like a flat chart.
    /// </summary>
    static byte[] Picture(Random rng, int width, int height)
    {
        var raw = new byte[(width * 3 + 1) * height];
        double h1 = rng.NextDouble() * 6.28, h2 = rng.NextDouble() * 6.28, f1 = 2 + rng.NextDouble() * 4, f2 = 1 + rng.NextDouble() * 3;
        var blobs = Enumerable.Range(0, 5).Select(_ => (X: rng.NextDouble() * width, Y: rng.NextDouble() * height,
            R: 40 + rng.NextDouble() * 120, C: rng.Next(3), A: 60 + rng.NextDouble() * 100)).ToArray();
        var i = 0;
        for (var y = 0; y < height; y++)
        {
            raw[i++] = 0; // filter: none
            for (var x = 0; x < width; x++)
            {
                double u = (double)x / width, v = (double)y / height;
                var baseR = 110 + 80 * Math.Sin(f1 * u + h1) * Math.Cos(f2 * v);
                var baseG = 120 + 70 * Math.Sin(f2 * v + h2);
                var baseB = 140 + 60 * Math.Cos(f1 * (u + v) + h1);
                double add0 = 0, add1 = 0, add2 = 0;
                foreach (var b in blobs)
                {
                    var d = ((x - b.X) * (x - b.X) + (y - b.Y) * (y - b.Y)) / (b.R * b.R);
                    if (d > 4) continue;
                    var a = b.A * Math.Exp(-d);
                    if (b.C == 0) add0 += a; else if (b.C == 1) add1 += a; else add2 += a;
                }
                var noise = rng.Next(-5, 6);
                raw[i++] = Clamp(baseR + add0 + noise + rng.Next(-2, 3));
                raw[i++] = Clamp(baseG + add1 + noise + rng.Next(-2, 3));
                raw[i++] = Clamp(baseB + add2 + noise + rng.Next(-2, 3));
            }
        }
        using var png = new MemoryStream();
        png.Write([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]);
        var ihdr = new byte[13];
        WriteBE(ihdr, 0, (uint)width);
        WriteBE(ihdr, 4, (uint)height);
        ihdr[8] = 8; // bit depth
        ihdr[9] = 2; // RGB
        Chunk(png, "IHDR", ihdr);
        using (var z = new MemoryStream())
        {
            using (var zs = new ZLibStream(z, CompressionLevel.Fastest, leaveOpen: true)) zs.Write(raw);
            Chunk(png, "IDAT", z.ToArray());
        }
        Chunk(png, "IEND", []);
        return png.ToArray();
    }

    static byte Clamp(double v) => (byte)Math.Clamp((int)v, 0, 255);

    static void WriteBE(byte[] b, int at, uint v)
    {
        b[at] = (byte)(v >> 24); b[at + 1] = (byte)(v >> 16); b[at + 2] = (byte)(v >> 8); b[at + 3] = (byte)v;
    }

    static void Chunk(Stream s, string type, byte[] data)
    {
        var head = new byte[8];
        WriteBE(head, 0, (uint)data.Length);
        Encoding.ASCII.GetBytes(type, 0, 4, head, 4);
        s.Write(head);
        s.Write(data);
        var crc = Crc32(head.AsSpan(4, 4), data);
        var tail = new byte[4];
        WriteBE(tail, 0, crc);
        s.Write(tail);
    }

    static readonly uint[] CrcTable = Enumerable.Range(0, 256).Select(n =>
    {
        var c = (uint)n;
        for (var k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        return c;
    }).ToArray();

    static uint Crc32(ReadOnlySpan<byte> type, ReadOnlySpan<byte> data)
    {
        var c = 0xFFFFFFFFu;
        foreach (var b in type) c = CrcTable[(c ^ b) & 0xFF] ^ (c >> 8);
        foreach (var b in data) c = CrcTable[(c ^ b) & 0xFF] ^ (c >> 8);
        return c ^ 0xFFFFFFFFu;
    }
}
