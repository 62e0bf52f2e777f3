from streaming_rec.cli import main

main()
