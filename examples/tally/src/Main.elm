port module Main exposing (main)

{-| Version 1 of an app that migrates (see tally2): counts events and
answers each with the count, as the counter does, and exports its model
for a migration.

    event:    anything (a string by default)
    response: {"count": 1, "event": <the event>}
    flags:    {"start": 41} starts counting at 41 (anything else: 0)
    export:   null on elmboxExport is answered on elmboxExported with
              {"count": <the count>}

-}

import Json.Decode as Decode
import Json.Encode as Encode


port onEvent : (Decode.Value -> msg) -> Sub msg


port respond : Encode.Value -> Cmd msg


port elmboxExport : (Decode.Value -> msg) -> Sub msg


port elmboxExported : Encode.Value -> Cmd msg


type alias Model =
    Int


type Msg
    = Event Decode.Value
    | Export


main : Program Decode.Value Model Msg
main =
    Platform.worker
        { init = init
        , update = update
        , subscriptions = \_ -> Sub.batch [ onEvent Event, elmboxExport (\_ -> Export) ]
        }


init : Decode.Value -> ( Model, Cmd Msg )
init flags =
    ( Decode.decodeValue (Decode.field "start" Decode.int) flags
        |> Result.withDefault 0
    , Cmd.none
    )


update : Msg -> Model -> ( Model, Cmd Msg )
update msg count =
    case msg of
        Event event ->
            ( count + 1
            , respond (Encode.object [ ( "count", Encode.int (count + 1) ), ( "event", event ) ])
            )

        Export ->
            ( count, elmboxExported (Encode.object [ ( "count", Encode.int count ) ]) )
